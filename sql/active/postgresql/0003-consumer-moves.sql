-- Consumer pointer moves and drops made by administrators (ftn18es.admin), kept as a record.
-- A move stays pending (applied = 0) until the consumer polls or opens a push session: its next
-- poll then reads from the moved pointer, whatever last_id it sends.
CREATE TABLE IF NOT EXISTS evt_consumer_moves (
    id BIGSERIAL NOT NULL PRIMARY KEY,
    ident VARCHAR(64) NOT NULL,
    action VARCHAR(8) NOT NULL,
    from_evt_id BIGINT NOT NULL,
    to_evt_id BIGINT NULL,
    by_user VARCHAR(255) NOT NULL,
    reason VARCHAR(200) NOT NULL DEFAULT '',
    move_time TIMESTAMP NOT NULL,
    applied SMALLINT NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS evt_consumer_moves_pending ON evt_consumer_moves (ident, applied);

-- Event queue and consumer pointers, as the reference implementation names them, so that an
-- existing futoin-eventstream database is taken over as it is (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS evt_queue (
    id BIGSERIAL NOT NULL PRIMARY KEY,
    type VARCHAR(16) NOT NULL,
    data JSON NOT NULL,
    ts TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS evt_consumers (
    id SERIAL2 NOT NULL PRIMARY KEY,
    last_evt_id BIGINT NOT NULL DEFAULT 0,
    reg_time TIMESTAMP NOT NULL,
    last_time TIMESTAMP NOT NULL,
    ident VARCHAR(64) NOT NULL UNIQUE
);

CREATE INDEX IF NOT EXISTS evt_consumers_last_evt_id ON evt_consumers USING BTREE (last_evt_id);

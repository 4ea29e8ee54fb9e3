-- Consumer pointer moves and drops made by administrators (ftn18es.admin), kept as a record.
-- A move stays pending (applied = 0) until the consumer polls or opens a push session: its next
-- poll then reads from the moved pointer, whatever last_id it sends.
CREATE TABLE IF NOT EXISTS evt_consumer_moves (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ident VARCHAR(64) NOT NULL,
    action VARCHAR(8) NOT NULL,
    from_evt_id BIGINT UNSIGNED NOT NULL,
    to_evt_id BIGINT UNSIGNED NULL,
    by_user VARCHAR(255) NOT NULL,
    reason VARCHAR(200) NOT NULL DEFAULT '',
    move_time DATETIME NOT NULL,
    applied SMALLINT NOT NULL DEFAULT 0,
    INDEX evt_consumer_moves_pending (ident, applied)
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- Poison events (push delivery): a consumer's parking rule, and the events parked for it.
-- evt_consumer_parking: max_attempts NULL means never park (block, as FTN18 promises in-order
-- delivery); park_streak counts parks with no successful delivery in between (the bound).
CREATE TABLE IF NOT EXISTS evt_consumer_parking (
    ident VARCHAR(64) NOT NULL PRIMARY KEY,
    max_attempts INT NULL,
    park_streak INT NOT NULL DEFAULT 0
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- A parked event keeps a copy of the event, so the discarder need not hold the queue back for
-- it. state: parked, replay (asked for, delivered at the consumer's next session), replayed,
-- skipped. acted_*: the last administrator's action on it; resolved_time: replayed or skipped.
CREATE TABLE IF NOT EXISTS evt_parked (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ident VARCHAR(64) NOT NULL,
    evt_id BIGINT UNSIGNED NOT NULL,
    evt_type VARCHAR(16) NOT NULL,
    evt_data LONGTEXT NOT NULL,
    evt_ts DATETIME NOT NULL,
    state VARCHAR(8) NOT NULL,
    attempts INT NOT NULL,
    first_failure DATETIME NOT NULL,
    last_failure DATETIME NOT NULL,
    error_code VARCHAR(64) NOT NULL,
    error_info VARCHAR(1000) NOT NULL,
    parked_time DATETIME NOT NULL,
    acted_by VARCHAR(255) NULL,
    acted_reason VARCHAR(200) NULL,
    acted_time DATETIME NULL,
    resolved_time DATETIME NULL,
    UNIQUE KEY evt_parked_event (ident, evt_id),
    INDEX evt_parked_state (state, ident)
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- Replays, skips and max_attempts changes are recorded with the moves: the event, the value.
-- Last and in one statement: MySQL commits DDL statement by statement, so a failed run leaves
-- at most the tables above, which a second run takes as they are.
ALTER TABLE evt_consumer_moves
    ADD COLUMN evt_id BIGINT UNSIGNED NULL,
    ADD COLUMN max_attempts INT NULL;

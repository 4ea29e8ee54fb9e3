-- Poison events (push delivery): a consumer's parking rule, and the events parked for it.
-- evt_consumer_parking: max_attempts NULL means never park (block, as FTN18 promises in-order
-- delivery); park_streak counts parks with no successful delivery in between (the bound).
CREATE TABLE IF NOT EXISTS evt_consumer_parking (
    ident VARCHAR(64) NOT NULL PRIMARY KEY,
    max_attempts INTEGER NULL,
    park_streak INTEGER NOT NULL DEFAULT 0
);

-- A parked event keeps a copy of the event, so the discarder need not hold the queue back for
-- it. state: parked, replay (asked for, delivered at the consumer's next session), replayed,
-- skipped. acted_*: the last administrator's action on it; resolved_time: replayed or skipped.
CREATE TABLE IF NOT EXISTS evt_parked (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    ident VARCHAR(64) NOT NULL,
    evt_id INTEGER NOT NULL,
    evt_type VARCHAR(16) NOT NULL,
    evt_data TEXT NOT NULL,
    evt_ts TIMESTAMP NOT NULL,
    state VARCHAR(8) NOT NULL,
    attempts INTEGER NOT NULL,
    first_failure TIMESTAMP NOT NULL,
    last_failure TIMESTAMP NOT NULL,
    error_code VARCHAR(64) NOT NULL,
    error_info VARCHAR(1000) NOT NULL,
    parked_time TIMESTAMP NOT NULL,
    acted_by VARCHAR(255) NULL,
    acted_reason VARCHAR(200) NULL,
    acted_time TIMESTAMP NULL,
    resolved_time TIMESTAMP NULL,
    UNIQUE (ident, evt_id)
);

CREATE INDEX IF NOT EXISTS evt_parked_state ON evt_parked (state, ident);

-- Replays, skips and max_attempts changes are recorded with the moves: the event, the value.
ALTER TABLE evt_consumer_moves ADD COLUMN evt_id INTEGER NULL;
ALTER TABLE evt_consumer_moves ADD COLUMN max_attempts INTEGER NULL;

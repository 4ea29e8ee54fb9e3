-- Event queue and consumer pointers, as the reference implementation names them, so that an
-- existing futoin-eventstream database is taken over as it is (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS evt_queue (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    type VARCHAR(16) NOT NULL,
    data TEXT NOT NULL,
    ts TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS evt_consumers (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    last_evt_id INTEGER NOT NULL DEFAULT 0,
    reg_time TIMESTAMP NOT NULL,
    last_time TIMESTAMP NOT NULL,
    ident VARCHAR(64) NOT NULL UNIQUE
);

CREATE INDEX IF NOT EXISTS evt_consumers_last_evt_id ON evt_consumers (last_evt_id);

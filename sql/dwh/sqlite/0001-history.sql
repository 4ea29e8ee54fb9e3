-- The warehouse copy of the stream, named as the reference names it.
CREATE TABLE IF NOT EXISTS evt_history (
    id INTEGER NOT NULL PRIMARY KEY,
    type VARCHAR(16) NOT NULL,
    data TEXT NOT NULL,
    ts TIMESTAMP NOT NULL
);

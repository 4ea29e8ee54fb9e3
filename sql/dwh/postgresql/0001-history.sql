-- The warehouse copy of the stream, named as the reference names it.
CREATE TABLE IF NOT EXISTS evt_history (
    id BIGINT NOT NULL PRIMARY KEY,
    type VARCHAR(16) NOT NULL,
    data JSON NOT NULL,
    ts TIMESTAMP NOT NULL
);

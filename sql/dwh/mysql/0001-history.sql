-- The warehouse copy of the stream, named as the reference names it.
CREATE TABLE IF NOT EXISTS evt_history (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    type VARCHAR(16) NOT NULL,
    data LONGTEXT NOT NULL,
    ts DATETIME NOT NULL
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

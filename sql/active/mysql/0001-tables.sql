-- Event queue and consumer pointers, as the reference implementation names them, so that an
-- existing futoin-eventstream database is taken over as it is (IF NOT EXISTS). New tables are
-- utf8mb4 from the start; 0002 converts a reference database's tables.
CREATE TABLE IF NOT EXISTS evt_queue (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    type VARCHAR(16) NOT NULL,
    data LONGTEXT NOT NULL,
    ts DATETIME NOT NULL
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS evt_consumers (
    id SMALLINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    last_evt_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
    reg_time DATETIME NOT NULL,
    last_time DATETIME NOT NULL,
    ident VARCHAR(64) NOT NULL UNIQUE,
    INDEX last_evt_id (last_evt_id)
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

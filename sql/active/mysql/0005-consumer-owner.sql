-- High availability: which node pushes a reliable consumer, and since which acquisition.
-- owner_epoch grows at every acquisition of the consumer's lock; a push session's pointer writes
-- hold only while it is still the epoch they started with (fencing). owner_node names the node
-- pushing it now, NULL once it let go cleanly (a successor need not wait for it to stop).
--
-- evt_control carries the nodes' control messages (MySQL has no notifications): each node reads
-- the recent rows at every heartbeat. Rows are short-lived; senders delete old ones.
CREATE TABLE IF NOT EXISTS evt_control (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    scope VARCHAR(64) NOT NULL,
    subject VARCHAR(64) NOT NULL,
    from_node VARCHAR(128) NOT NULL,
    info VARCHAR(200) NOT NULL DEFAULT '',
    -- An `end` ends only sessions of this owner epoch or older ('': any).
    epoch VARCHAR(20) NOT NULL DEFAULT '',
    created DATETIME(3) NOT NULL,
    INDEX evt_control_created (created)
) ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- One statement, so that it is applied whole or not at all (MySQL commits DDL by itself).
ALTER TABLE evt_consumers
    ADD COLUMN owner_epoch BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN owner_node VARCHAR(128) NULL;

-- High availability: which node pushes a reliable consumer, and since which acquisition.
-- owner_epoch grows at every acquisition of the consumer's lock; a push session's pointer writes
-- hold only while it is still the epoch they started with (fencing). owner_node names the node
-- pushing it now, NULL once it let go cleanly (a successor need not wait for it to stop).
ALTER TABLE evt_consumers ADD COLUMN IF NOT EXISTS owner_epoch BIGINT NOT NULL DEFAULT 0;

ALTER TABLE evt_consumers ADD COLUMN IF NOT EXISTS owner_node VARCHAR(128) NULL;

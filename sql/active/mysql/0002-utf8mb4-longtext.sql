-- Tables created by the reference may be in 3-byte utf8 with a 64 KiB TEXT data column: emoji
-- would fail and large events would be cut. Convert them (a no-op on tables 0001 created).
ALTER TABLE evt_queue
    CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
    MODIFY data LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL;

ALTER TABLE evt_consumers
    CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

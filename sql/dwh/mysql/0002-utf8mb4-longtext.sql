-- Convert a reference-created history table to utf8mb4 and LONGTEXT (a no-op on ours).
ALTER TABLE evt_history
    CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
    MODIFY data LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL;

-- Spend attribution (core/attribution.py): the request's `user` field (column end_user: `user` is reserved
-- in PostgreSQL) and its tags, as every row's last columns. Added on the partitioned parent, so every day
-- partition (and the default one) gets them, and tollway_ensure_partition's `LIKE requests` copies them
-- into partitions made later.
--
-- The hourly roll-ups are NOT keyed by user or tag: end users are unbounded in number (a roll-up row per
-- user and hour would grow like the rows themselves) and a row carries several tags, so per-tag sums
-- overlap. Reports grouped or filtered by user or tag sum the rows of their window instead; the index
-- below keeps one user's window cheap.
ALTER TABLE requests ADD COLUMN IF NOT EXISTS end_user TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN IF NOT EXISTS tags JSONB NOT NULL DEFAULT '[]';
CREATE INDEX IF NOT EXISTS requests_end_user_ts ON requests (end_user, ts);

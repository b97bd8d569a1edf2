-- Key lifecycle (docs/budgets.md, "Key lifecycle"): an expiry, and a rotated-out secret's salted hash kept
-- valid until the end of its grace period. Times are ISO-8601 UTC text like the table's other times; ''
-- means none.
ALTER TABLE keys ADD COLUMN IF NOT EXISTS expires_at TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN IF NOT EXISTS prev_salt TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN IF NOT EXISTS prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN IF NOT EXISTS prev_until TEXT NOT NULL DEFAULT '';

-- Budgets as data (docs/budgets.md, "Budgets as data"): a key's budgets become a list of
-- {window, limit_usd[, model][, per_user]} entries. Existing daily_usd/monthly_usd move into it as day and
-- month entries (and are cleared, so nothing counts twice); the columns stay for older replicas during a
-- rolling upgrade, and tollway reads any value an older replica writes there as the same entries.
ALTER TABLE keys ADD COLUMN IF NOT EXISTS budgets JSONB NOT NULL DEFAULT '[]';
UPDATE keys SET
  budgets = budgets
    || CASE WHEN daily_usd IS NULL THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('window', 'day', 'limit_usd', daily_usd::text)) END
    || CASE WHEN monthly_usd IS NULL THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('window', 'month', 'limit_usd', monthly_usd::text)) END,
  daily_usd = NULL,
  monthly_usd = NULL,
  seq = nextval('keys_seq')
WHERE daily_usd IS NOT NULL OR monthly_usd IS NOT NULL;

-- Teams managed by `tollway teams` and /admin/teams (teams in the config file are not stored here).
-- A deleted team keeps its row with deleted_at set, so every replica learns of the deletion by seq.
CREATE TABLE IF NOT EXISTS teams (
  name TEXT PRIMARY KEY,
  rpm INTEGER,
  tpm INTEGER,
  budgets JSONB NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  deleted_at TEXT NOT NULL DEFAULT '',
  seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS teams_seq_idx ON teams (seq);

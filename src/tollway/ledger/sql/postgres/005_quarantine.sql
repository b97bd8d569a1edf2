-- Rows the ledger could not store (a value PostgreSQL refused), kept whole with the reason instead of
-- blocking the rows after them (accounting/ledger_quarantine.py). row_json is TEXT, not JSONB, so that
-- any row can be kept; read it with row_json::jsonb.
CREATE TABLE IF NOT EXISTS quarantine (
  quarantined_at TIMESTAMPTZ NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  request_ts TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL,
  row_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_at ON quarantine (quarantined_at);

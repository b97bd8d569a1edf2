-- The ledger (one row per request, columns as in accounting/ledger_schema.py) and the virtual keys.
-- Money is NUMERIC: exact, so SUM(cost_usd) in SQL is exact too.
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY,
  ts TIMESTAMPTZ NOT NULL,
  key_id TEXT NOT NULL DEFAULT '',
  endpoint TEXT NOT NULL,
  requested_model TEXT NOT NULL,
  route_group TEXT NOT NULL DEFAULT '',
  deployment TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  upstream_model TEXT NOT NULL DEFAULT '',
  jurisdiction TEXT NOT NULL DEFAULT '',
  attempts JSONB NOT NULL DEFAULT '[]',
  prompt_tokens BIGINT NOT NULL DEFAULT 0,
  cached_tokens BIGINT NOT NULL DEFAULT 0,
  cache_write_tokens BIGINT NOT NULL DEFAULT 0,
  completion_tokens BIGINT NOT NULL DEFAULT 0,
  reasoning_tokens BIGINT NOT NULL DEFAULT 0,
  usage_source TEXT NOT NULL DEFAULT '',
  cost_usd NUMERIC NOT NULL DEFAULT 0,
  ttft_ms DOUBLE PRECISION,
  latency_ms DOUBLE PRECISION,
  status TEXT NOT NULL,
  http_status INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  streamed SMALLINT NOT NULL DEFAULT 0,
  shadow SMALLINT NOT NULL DEFAULT 0,
  priced SMALLINT NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE INDEX IF NOT EXISTS requests_key_ts ON requests (key_id, ts);

CREATE SEQUENCE IF NOT EXISTS keys_seq;
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  team TEXT NOT NULL DEFAULT '',
  daily_usd NUMERIC,
  monthly_usd NUMERIC,
  rpm INTEGER,
  tpm INTEGER,
  models JSONB NOT NULL DEFAULT '[]',
  residency JSONB NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revoked_at TEXT NOT NULL DEFAULT '',
  seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_seq_idx ON keys (seq);

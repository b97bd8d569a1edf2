-- The Batch API (batch/): each line's ledger row names its batch and the rate it was priced at
-- ('batch', 'off_peak' or 'standard'; '' for a request that is not a batch line), and the batch tables:
-- uploaded files (content here unless batch.files_dir keeps them in a directory), batches with the lease
-- a replica holds while it runs one, each line's state (so a restart resumes without running a line
-- twice), and the upstream batch of each native share (so a restart polls it, never resubmits).
ALTER TABLE requests ADD COLUMN IF NOT EXISTS batch_id TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN IF NOT EXISTS price_rate TEXT NOT NULL DEFAULT '';

CREATE TABLE IF NOT EXISTS batch_files (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  filename TEXT NOT NULL,
  bytes BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  content BYTEA,
  path TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  shape TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  input_file_id TEXT NOT NULL,
  completion_window TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  deadline BIGINT NOT NULL,
  in_progress_at BIGINT,
  finalizing_at BIGINT,
  completed_at BIGINT,
  cancelling_at BIGINT,
  cancelled_at BIGINT,
  expired_at BIGINT,
  failed_at BIGINT,
  output_file_id TEXT,
  error_file_id TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  total INTEGER NOT NULL,
  worst_case_usd TEXT NOT NULL DEFAULT '0',
  expected_cost_usd TEXT NOT NULL DEFAULT '0',
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_key_created ON batches (key_id, created_at);
CREATE TABLE IF NOT EXISTS batch_lines (
  batch_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  custom_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  mode TEXT NOT NULL,
  rate TEXT NOT NULL,
  not_before DOUBLE PRECISION NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  request_id TEXT NOT NULL,
  status_code INTEGER NOT NULL DEFAULT 0,
  response TEXT,
  error TEXT,
  cost_usd TEXT NOT NULL DEFAULT '0',
  native_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS batch_native (
  batch_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  upstream_batch_id TEXT NOT NULL,
  upstream_file_id TEXT,
  extra TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL DEFAULT 'submitted',
  PRIMARY KEY (batch_id, deployment)
);

-- The upstream's system_fingerprint (drift detection) and what each request needed (replay).
ALTER TABLE requests ADD COLUMN IF NOT EXISTS system_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN IF NOT EXISTS request_features JSONB NOT NULL DEFAULT '{}';

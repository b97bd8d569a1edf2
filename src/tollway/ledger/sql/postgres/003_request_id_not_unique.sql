-- A client may send the same x-request-id twice: both requests belong in the ledger. What must stay unique
-- is one request's row, so that replaying the spool after an outage writes nothing twice: (id, ts).
ALTER TABLE requests DROP CONSTRAINT IF EXISTS requests_pkey;
CREATE UNIQUE INDEX IF NOT EXISTS requests_id_ts ON requests (id, ts);

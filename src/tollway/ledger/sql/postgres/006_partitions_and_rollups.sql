-- The ledger partitioned by UTC day, and hourly roll-ups kept exactly beside it (docs/gateway.md, "Ledger").
--
-- Why partitions: at 1,000 requests/s the ledger grows by ~86M rows a day. Retention then drops whole
-- day partitions (DROP TABLE: no DELETE, no vacuum debt, no bloat), and a time-window query only touches
-- the days it covers. The partition key is ts, so the unique key a replayed spool leans on, (id, ts),
-- stays enforceable on the partitioned table.
--
-- Converting an existing table: the rows are COPIED into day partitions, not attached as one old
-- partition. Attaching would be instant, but the old table would stay one partition spanning every day
-- before the migration, which retention could only drop when its newest row is old enough; copying
-- makes every day droppable on its own from the start. The copy runs once, inside the migration's
-- transaction (migrate() holds an advisory lock, so replicas starting together wait for it rather than
-- write into a half-built table); for a very large ledger, run `tollway serve` once on one replica first.
ALTER TABLE requests RENAME TO requests_unpartitioned;
ALTER INDEX IF EXISTS requests_id_ts RENAME TO requests_unpartitioned_id_ts;
ALTER INDEX IF EXISTS requests_ts RENAME TO requests_unpartitioned_ts;
ALTER INDEX IF EXISTS requests_key_ts RENAME TO requests_unpartitioned_key_ts;

CREATE TABLE requests (LIKE requests_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX requests_id_ts ON requests (id, ts);
CREATE INDEX requests_ts ON requests (ts);
CREATE INDEX requests_key_ts ON requests (key_id, ts);
-- Rows outside every day partition (a clock far off) land here instead of failing; the writer creates the
-- day partition of every row it writes first, and tollway_ensure_partition moves such rows out.
CREATE TABLE requests_default PARTITION OF requests DEFAULT;

-- The partition of one UTC day, created if missing (rows of that day waiting in the default partition are
-- moved into it). Callers serialise with pg_advisory_xact_lock (ledger/partitions.py).
CREATE OR REPLACE FUNCTION tollway_ensure_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  part text := 'requests_p' || to_char(day, 'YYYYMMDD');
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE requests INCLUDING DEFAULTS)', part);
  EXECUTE format('WITH moved AS (DELETE FROM requests_default WHERE ts >= %L AND ts < %L RETURNING *) '
                 'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
  EXECUTE format('ALTER TABLE requests ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  RETURN true;
END $$;

-- Whether a row's answer came from a deployment other than the plan's first (observe/row_facts.py
-- fell_back, the same rule in SQL so the roll-ups can count fallbacks as rows are written).
CREATE OR REPLACE FUNCTION tollway_fell_back(deployment text, attempts jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT deployment <> '' AND coalesce((
    SELECT a->>'outcome' IS DISTINCT FROM 'ok'
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(attempts) = 'array' THEN attempts ELSE '[]' END)
         WITH ORDINALITY AS t(a, n)
    WHERE a->>'outcome' = 'ok'
       OR (coalesce(a->>'outcome', '') NOT IN ('shadow', 'cancelled', 'routing_overhead')
           AND (a->>'deployment') IS DISTINCT FROM deployment)
    ORDER BY n LIMIT 1), false)
$$;

DO $$
DECLARE
  first_day date;
  d date;
BEGIN
  SELECT (min(ts) AT TIME ZONE 'UTC')::date INTO first_day FROM requests_unpartitioned;
  FOR d IN SELECT generate_series(least(coalesce(first_day, current_date), (now() AT TIME ZONE 'UTC')::date),
                                  (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date LOOP
    PERFORM tollway_ensure_partition(d);
  END LOOP;
END $$;
INSERT INTO requests SELECT * FROM requests_unpartitioned;
DROP TABLE requests_unpartitioned;

-- Hourly roll-ups: exact sums of the rows, per hour and series. Kept in the same statement as each batch's
-- insert, from the rows that insert really added (RETURNING after ON CONFLICT DO NOTHING), so a replayed
-- row already present adds nothing and the sums can never disagree with the rows.
CREATE TABLE requests_hourly (
  hour TIMESTAMPTZ NOT NULL,
  key_id TEXT NOT NULL,
  team TEXT NOT NULL,
  route_group TEXT NOT NULL,
  deployment TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,            -- upstream_model
  requested_model TEXT NOT NULL,
  status TEXT NOT NULL,
  shadow SMALLINT NOT NULL,
  requests BIGINT NOT NULL,
  prompt_tokens NUMERIC NOT NULL,
  cached_tokens NUMERIC NOT NULL,
  cache_write_tokens NUMERIC NOT NULL,
  completion_tokens NUMERIC NOT NULL,
  reasoning_tokens NUMERIC NOT NULL,
  cost_usd NUMERIC NOT NULL,
  unpriced BIGINT NOT NULL,
  estimated BIGINT NOT NULL,
  fallbacks BIGINT NOT NULL,
  PRIMARY KEY (hour, key_id, team, route_group, deployment, provider, model, requested_model, status, shadow)
);
-- Upstream attempts per hour and provider (the report's failure rates), kept the same way.
CREATE TABLE requests_hourly_attempts (
  hour TIMESTAMPTZ NOT NULL,
  provider TEXT NOT NULL,
  attempts BIGINT NOT NULL,
  failed BIGINT NOT NULL,
  PRIMARY KEY (hour, provider)
);

"""The PostgreSQL ledger's batch insert, which keeps the hourly roll-ups in the same statement.

A report over weeks of an 86M-rows-a-day ledger cannot read the rows, so aggregates are kept as rows
arrive: one row per (hour, key, team, route group, deployment, provider, model, requested model, status,
shadow) with exact sums (NUMERIC: tokens and dollars never round). They are added from the rows the
insert really added (`RETURNING` after `ON CONFLICT (id, ts) DO NOTHING`), in the same statement, so a
replayed row that is already stored adds nothing, a refused batch adds nothing, and the sums cannot
disagree with the rows. The batch travels as one array per column (`unnest`): one statement, one
round trip, whatever the batch size.
"""

from __future__ import annotations

from tollway.ledger.schema import LEDGER_COLUMNS

# The array type each column travels as; JSON columns travel as text and are cast on insert.
_ARRAY_TYPES = {
    "ts": "timestamptz", "prompt_tokens": "bigint", "cached_tokens": "bigint", "cache_write_tokens": "bigint",
    "completion_tokens": "bigint", "reasoning_tokens": "bigint", "cost_usd": "numeric", "ttft_ms": "float8",
    "latency_ms": "float8", "http_status": "integer", "streamed": "smallint", "shadow": "smallint",
    "priced": "smallint",
}
_JSON_COLUMNS = ("attempts", "request_features", "tags")
ROLLUP_KEY = ("hour", "key_id", "team", "route_group", "deployment", "provider", "model", "requested_model",
              "status", "shadow")
ROLLUP_SUMS = ("requests", "prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens",
               "reasoning_tokens", "cost_usd", "unpriced", "estimated", "fallbacks")
_OUTCOMES_BESIDE = "('shadow', 'routing_overhead')"  # with 'skipped': attempts the report does not count


def _unnest() -> str:
    arrays = ", ".join(f"%s::{_ARRAY_TYPES.get(name, 'text')}[]" for name in LEDGER_COLUMNS)
    return f"unnest({arrays}) AS t({', '.join(LEDGER_COLUMNS)})"


def _select_incoming() -> str:
    return ", ".join(f"{name}::jsonb" if name in _JSON_COLUMNS else name for name in LEDGER_COLUMNS)


def rollup_select(source: str) -> str:
    """Roll-up rows summed from `source` (rows with the ledger's columns), team looked up from the keys."""
    return f"""
  SELECT date_trunc('hour', a.ts, 'UTC'), a.key_id, coalesce(k.team, ''), a.route_group, a.deployment, a.provider,
         a.upstream_model, a.requested_model, a.status, a.shadow,
         count(*), sum(a.prompt_tokens), sum(a.cached_tokens), sum(a.cache_write_tokens), sum(a.completion_tokens),
         sum(a.reasoning_tokens), sum(a.cost_usd), count(*) FILTER (WHERE a.priced = 0),
         count(*) FILTER (WHERE a.usage_source = 'estimated'),
         count(*) FILTER (WHERE tollway_fell_back(a.deployment, a.attempts))
  FROM {source} a LEFT JOIN keys k ON k.id = a.key_id
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"""


def attempts_select(source: str) -> str:
    return f"""
  SELECT date_trunc('hour', a.ts, 'UTC'), coalesce(e->>'provider', ''), count(*),
         count(*) FILTER (WHERE coalesce(e->>'outcome', '') NOT IN ('ok', 'cancelled'))
  FROM {source} a CROSS JOIN LATERAL jsonb_array_elements(
         CASE WHEN jsonb_typeof(a.attempts) = 'array' THEN a.attempts ELSE '[]'::jsonb END) e
  WHERE a.shadow = 0 AND coalesce(e->>'outcome', '') NOT IN ('skipped', 'shadow', 'routing_overhead')
  GROUP BY 1, 2"""


def _upsert_rollups(select: str) -> str:
    sums = ", ".join(f"{name} = h.{name} + EXCLUDED.{name}" for name in ROLLUP_SUMS)
    return (f"INSERT INTO requests_hourly AS h ({', '.join(ROLLUP_KEY + ROLLUP_SUMS)}) {select}\n"
            f"  ON CONFLICT ({', '.join(ROLLUP_KEY)}) DO UPDATE SET {sums}")


def _upsert_attempts(select: str) -> str:
    return (f"INSERT INTO requests_hourly_attempts AS x (hour, provider, attempts, failed) {select}\n"
            "  ON CONFLICT (hour, provider) DO UPDATE SET attempts = x.attempts + EXCLUDED.attempts, "
            "failed = x.failed + EXCLUDED.failed")


INSERT_WITH_ROLLUPS_SQL = f"""
WITH added AS (
  INSERT INTO requests ({', '.join(LEDGER_COLUMNS)})
  SELECT {_select_incoming()} FROM {_unnest()}
  ON CONFLICT (id, ts) DO NOTHING
  RETURNING *
), hourly AS (
  {_upsert_rollups(rollup_select('added'))}
)
{_upsert_attempts(attempts_select('added'))}
"""

# Rebuild both roll-up tables from the rows (after the migration that introduced them; also a repair tool).
REBUILD_ROLLUPS_SQL = (
    "DELETE FROM requests_hourly; DELETE FROM requests_hourly_attempts; "
    f"{_upsert_rollups(rollup_select('requests'))}; {_upsert_attempts(attempts_select('requests'))}")


def columns_as_arrays(records: list[list]) -> list[list]:
    """Rows (in LEDGER_COLUMNS order) turned into one list per column, the parameters of the insert."""
    return [list(column) for column in zip(*records)] if records else [[] for _ in LEDGER_COLUMNS]

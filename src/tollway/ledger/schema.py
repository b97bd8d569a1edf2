"""The ledger's row: one per request, success or failure.

This is the contract between the gateway (which writes rows), `tollway usage`/`report` (which sum them)
and `tollway plan --from-ledger`/`replay` (which read traffic back). Money is stored as a Decimal string
so sums are exact; times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Columns in table order. `attempts` is a JSON list of objects:
#   {"deployment", "provider", "jurisdiction", "outcome", "status", "error", "latency_ms", "cost_usd",
#    "prompt_tokens", "completion_tokens", "key" (the provider key's fingerprint, with several keys)}
# outcome is one of: "ok", "retry", "failover", "fatal", "skipped", "cancelled" (kind "hedge_loser": a hedge
# that lost the race, with its estimated cost), "routing_overhead" (a classifier call made to route it).
LEDGER_COLUMNS: tuple[str, ...] = (
    "id",                 # TEXT the request id (x-request-id); not unique: clients may reuse theirs
    "ts",                 # TEXT ISO-8601 UTC time the request arrived, e.g. 2026-11-22T06:40:00.123456+00:00
    "key_id",             # TEXT virtual key id or "" when keys are off
    "endpoint",           # TEXT "chat", "completions" or "embeddings"
    "requested_model",    # TEXT model name the client asked for
    "route_group",        # TEXT the route group that served it
    "deployment",         # TEXT deployment that produced the answer ("" if none did)
    "provider",           # TEXT provider of that deployment
    "upstream_model",     # TEXT the model name sent upstream
    "jurisdiction",       # TEXT jurisdiction of that deployment
    "attempts",           # TEXT JSON list, see above
    "prompt_tokens",      # INTEGER, every prompt token incl. cached and cache-write
    "cached_tokens",      # INTEGER
    "cache_write_tokens", # INTEGER
    "completion_tokens",  # INTEGER incl. reasoning
    "reasoning_tokens",   # INTEGER
    "usage_source",       # TEXT "reported" | "estimated" | "" (no answer)
    "cost_usd",           # TEXT exact Decimal, sum over all attempts that consumed tokens
    "ttft_ms",            # REAL time to first byte of content sent to the client, NULL if none
    "latency_ms",         # REAL total time to the last byte
    "status",             # TEXT "ok" | "error" | "client_error" | "stream_error" | "cancelled" (client left)
    "http_status",        # INTEGER status sent to the client
    "error",              # TEXT message of the failure, "" if ok
    "streamed",           # INTEGER 0/1
    "shadow",             # INTEGER 0/1: a mirrored copy, not the client's answer
    "priced",             # INTEGER 1 when cost_usd is known; 0 when a needed rate was missing (cost_usd "0")
    "system_fingerprint", # TEXT the upstream's system_fingerprint, "" if it sent none (drift detection)
    "request_features",   # TEXT JSON: what serving the request needs, for replay under another policy:
                          #   {"needs": ["vision", "tools", "json"], "max_tokens": int|null,
                          #    "residency": [jurisdictions]|null}  (prompt size: use prompt_tokens)
    "end_user",           # TEXT the request's `user` field (OpenAI's end-user id), "" if none; not named
                          #   `user`, a reserved word in PostgreSQL
    "tags",               # TEXT JSON sorted list of tags ("key:value" or bare), core/attribution.py
    "batch_id",           # TEXT the batch a line belongs to (batch/), "" for a request sent directly
    "price_rate",         # TEXT the rate a batch line was priced at: "batch" | "off_peak" | "standard";
                          #   "" for a request sent directly
)

# Columns added after the first release, with their SQLite definitions: open_sqlite adds any an older
# ledger file lacks (PostgreSQL has numbered migrations in ledger/sql/postgres/).
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("priced", "INTEGER NOT NULL DEFAULT 1"),
    ("system_fingerprint", "TEXT NOT NULL DEFAULT ''"),
    ("request_features", "TEXT NOT NULL DEFAULT '{}'"),
    ("end_user", "TEXT NOT NULL DEFAULT ''"),
    ("tags", "TEXT NOT NULL DEFAULT '[]'"),
    ("batch_id", "TEXT NOT NULL DEFAULT ''"),
    ("price_rate", "TEXT NOT NULL DEFAULT ''"),
)

CREATE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS requests (
  id TEXT NOT NULL,
  ts TEXT NOT NULL,
  key_id TEXT NOT NULL DEFAULT '',
  endpoint TEXT NOT NULL,
  requested_model TEXT NOT NULL,
  route_group TEXT NOT NULL DEFAULT '',
  deployment TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  upstream_model TEXT NOT NULL DEFAULT '',
  jurisdiction TEXT NOT NULL DEFAULT '',
  attempts TEXT NOT NULL DEFAULT '[]',
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens INTEGER NOT NULL DEFAULT 0,
  usage_source TEXT NOT NULL DEFAULT '',
  cost_usd TEXT NOT NULL DEFAULT '0',
  ttft_ms REAL,
  latency_ms REAL,
  status TEXT NOT NULL,
  http_status INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  streamed INTEGER NOT NULL DEFAULT 0,
  shadow INTEGER NOT NULL DEFAULT 0,
  priced INTEGER NOT NULL DEFAULT 1,
  system_fingerprint TEXT NOT NULL DEFAULT '',
  request_features TEXT NOT NULL DEFAULT '{}',
  end_user TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '[]',
  batch_id TEXT NOT NULL DEFAULT '',
  price_rate TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE INDEX IF NOT EXISTS requests_key_ts ON requests (key_id, ts);
"""


@dataclass(slots=True)
class LedgerRow:
    """One request as the ledger stores it (see LEDGER_COLUMNS for meanings)."""

    id: str
    ts: str
    endpoint: str
    requested_model: str
    status: str
    http_status: int
    key_id: str = ""
    route_group: str = ""
    deployment: str = ""
    provider: str = ""
    upstream_model: str = ""
    jurisdiction: str = ""
    attempts: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    usage_source: str = ""
    cost_usd: str = "0"
    ttft_ms: float | None = None
    latency_ms: float | None = None
    error: str = ""
    streamed: int = 0
    shadow: int = 0
    priced: int = 1
    system_fingerprint: str = ""
    request_features: str = "{}"
    end_user: str = ""
    tags: str = "[]"
    batch_id: str = ""
    price_rate: str = ""

"""The ledger rows `tollway replay` walks: client answers in time order, with what each request needed.

Only the columns replay uses are read, a batch at a time, ordered by time (the ledger's `ts` index), so
a month of traffic streams through without sitting in memory and live statistics can be learned in the
order the gateway learned them. Ledgers written before `request_features` existed lack it (or hold
"{}"): such rows replay as needing nothing special, and are counted so the report can say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from tollway.plan.ledger_source import TrafficReader, utc, window_clause
from tollway.plan.scenario import ScenarioError

# (column, SQL used when an older ledger lacks it), in the order logged_request unpacks them
REPLAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", ""), ("ts", ""), ("key_id", ""), ("endpoint", ""), ("requested_model", ""), ("route_group", ""),
    ("deployment", ""), ("provider", ""), ("upstream_model", ""), ("prompt_tokens", ""), ("cached_tokens", ""),
    ("cache_write_tokens", ""), ("completion_tokens", ""), ("usage_source", ""), ("cost_usd", ""),
    ("ttft_ms", ""), ("latency_ms", ""), ("status", ""), ("streamed", ""), ("priced", "1"),
    ("request_features", "'{}'"),
)

_SELECT = """
SELECT {columns}
FROM requests
WHERE shadow = 0 {statuses} {window}
ORDER BY ts
"""


@dataclass(frozen=True, slots=True)
class LoggedFeatures:
    """What the gateway recorded about a request's needs (ledger column `request_features`)."""

    needs: frozenset[str] = frozenset()
    max_tokens: int | None = None
    prompt_tokens_estimate: int | None = None
    residency: frozenset[str] | None = None   # the policy in force: key, route group and header combined
    recorded: bool = False                    # False: the row predates request features ("{}")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One client request as the ledger has it, in the types replay computes with."""

    id: str
    ts: datetime
    key_id: str
    endpoint: str
    requested_model: str
    route_group: str
    deployment: str
    provider: str
    upstream_model: str
    prompt_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    completion_tokens: int
    usage_source: str
    cost_usd: Decimal
    priced: bool
    ttft_ms: float | None
    latency_ms: float | None
    status: str
    streamed: bool
    features: LoggedFeatures


def read_logged_requests(reader: TrafficReader, since: datetime | None, until: datetime | None,
                         include_failed: bool = False) -> Iterator[LoggedRequest]:
    """Client requests (not shadow copies) in [since, until), oldest first; answered ones only unless
    `include_failed`. Raises ScenarioError naming the ledger when it cannot be read or a row is malformed."""
    present = reader.columns()
    columns = ", ".join(name if name in present or not fallback else f"{fallback} AS {name}"
                        for name, fallback in REPLAY_COLUMNS)
    where, params = window_clause(since, until, reader.placeholder)
    statuses = "" if include_failed else "AND status = 'ok'"
    sql = _SELECT.format(columns=columns, statuses=statuses, window=where)
    for values in reader.stream(sql, params):
        yield logged_request(values, reader.description)


def logged_request(values: tuple[Any, ...], where: str) -> LoggedRequest:
    """One selected row (REPLAY_COLUMNS order) as a LoggedRequest."""
    (ident, ts, key_id, endpoint, requested_model, route_group, deployment, provider, upstream_model, prompt, cached,
     cache_write, completion, usage_source, cost, ttft_ms, latency_ms, status, streamed, priced, features) = values
    ident = str(ident)
    return LoggedRequest(
        id=ident, ts=_moment(ts, ident, where), key_id=key_id or "", endpoint=endpoint or "chat",
        requested_model=requested_model or "", route_group=route_group or "", deployment=deployment or "",
        provider=provider or "", upstream_model=upstream_model or "", prompt_tokens=int(prompt or 0),
        cached_tokens=int(cached or 0), cache_write_tokens=int(cache_write or 0),
        completion_tokens=int(completion or 0), usage_source=usage_source or "", cost_usd=_money(cost, ident, where),
        priced=priced is None or bool(int(priced)), ttft_ms=_float(ttft_ms), latency_ms=_float(latency_ms),
        status=status or "", streamed=bool(streamed), features=parse_features(features, ident, where),
    )


def parse_features(value: Any, ident: str = "?", where: str = "the ledger") -> LoggedFeatures:
    """The request_features JSON (text from SQLite, already decoded from PostgreSQL's JSONB)."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value or "{}")
        except orjson.JSONDecodeError:
            raise ScenarioError(f"{where}: row {ident}: request_features is not JSON: {value!r}") from None
    if not value:
        return LoggedFeatures()
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: row {ident}: request_features must be a JSON object (got {value!r})")
    needs, residency = value.get("needs") or [], value.get("residency")
    max_tokens, estimate = value.get("max_tokens"), value.get("prompt_tokens_estimate")
    if (not isinstance(needs, list) or not all(isinstance(n, str) for n in needs)
            or (residency is not None and not isinstance(residency, list))
            or not _optional_int(max_tokens) or not _optional_int(estimate)):
        raise ScenarioError(f"{where}: row {ident}: request_features has an unexpected shape: {value!r} (expected "
                            '{"needs": [...], "max_tokens": n|null, "prompt_tokens_estimate": n, '
                            '"residency": [...]|null})')
    return LoggedFeatures(frozenset(needs), max_tokens, estimate,
                          None if residency is None else frozenset(str(r).lower() for r in residency), recorded=True)


def _optional_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _moment(value: Any, ident: str, where: str) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    try:
        return utc(datetime.fromisoformat(str(value)))
    except ValueError:
        raise ScenarioError(f"{where}: row {ident}: ts {value!r} is not an ISO-8601 time") from None


def _money(value: Any, ident: str, where: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise ScenarioError(f"{where}: row {ident}: cost_usd {value!r} is not an exact decimal amount")
    return amount


def _float(value: Any) -> float | None:
    return None if value is None else float(value)

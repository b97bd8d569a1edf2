"""What the admin UI reads from the ledger: the request log with filters, and spend over time by a dimension.

Both read the store `tollway serve` writes (SQLite or PostgreSQL, ledger/reader.py), in a thread. The
request log streams the window's rows and keeps the newest `limit` that pass the filters, each with its
attempts, tokens and exact cost. Spend is summed with Decimals, so each figure equals the ledger's exact
sum: per key or team from the hourly sums (PostgreSQL's roll-ups), per end user or tag from the rows (a
request with several tags counts toward each of them; the "(none)" series holds untagged requests).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from tollway.core.errors import bad_request
from tollway.ledger.reader import LedgerReader
from tollway.ledger.schema import LedgerRow

DIMENSIONS = ("key", "team", "user", "tag")
BUCKETS = {"hour": 13, "day": 10}  # characters of an ISO time that name the bucket
MAX_WINDOW = timedelta(days=93)
MAX_LOG_ROWS = 1000
NONE = "(none)"


@dataclass(frozen=True, slots=True)
class LogFilter:
    since: datetime
    until: datetime
    status: str | None = None
    key: str | None = None
    model: str | None = None
    limit: int = 200

    def keeps(self, row: LedgerRow) -> bool:
        if self.status and row.status != self.status and str(row.http_status) != self.status:
            return False
        if self.model and self.model not in (row.requested_model, row.upstream_model, row.route_group):
            return False
        return True


def window(query: dict[str, str], default: timedelta) -> tuple[datetime, datetime]:
    """(since, until) from ISO `since`/`until` query values (naive means UTC); 400 for bad or huge windows."""
    now = datetime.now(UTC)
    since = parse_time(query.get("since"), "since") or now - default
    until = parse_time(query.get("until"), "until") or now
    if since >= until:
        raise bad_request("since must be before until", "since")
    if until - since > MAX_WINDOW:
        raise bad_request(f"the window may span at most {MAX_WINDOW.days} days", "since")
    return since, until


def log_filter(query: dict[str, str]) -> LogFilter:
    since, until = window(query, timedelta(hours=24))
    try:
        limit = int(query.get("limit", "200"))
    except ValueError:
        raise bad_request("limit must be a whole number", "limit") from None
    if not 1 <= limit <= MAX_LOG_ROWS:
        raise bad_request(f"limit must be between 1 and {MAX_LOG_ROWS}", "limit")
    return LogFilter(since, until, query.get("status") or None, query.get("key") or None,
                     query.get("model") or None, limit)


def request_log(reader: LedgerReader, wanted: LogFilter) -> list[dict[str, Any]]:
    """The newest `wanted.limit` rows passing the filter, newest first."""
    kept: deque[LedgerRow] = deque(maxlen=wanted.limit)
    for row in reader.rows(wanted.since, wanted.until, wanted.key):
        if wanted.keeps(row):
            kept.append(row)
    return [_log_entry(row) for row in reversed(kept)]


def _log_entry(row: LedgerRow) -> dict[str, Any]:
    return {"id": row.id, "ts": row.ts, "key_id": row.key_id, "user": row.end_user, "tags": _tags(row),
            "endpoint": row.endpoint, "model": row.requested_model, "route_group": row.route_group,
            "deployment": row.deployment, "provider": row.provider, "status": row.status,
            "http_status": row.http_status, "error": row.error, "prompt_tokens": row.prompt_tokens,
            "cached_tokens": row.cached_tokens, "completion_tokens": row.completion_tokens,
            "reasoning_tokens": row.reasoning_tokens, "cost_usd": row.cost_usd, "priced": bool(row.priced),
            "latency_ms": row.latency_ms, "ttft_ms": row.ttft_ms, "streamed": bool(row.streamed),
            "attempts": row.attempts}


def spend(reader: LedgerReader, by: str, bucket: str, since: datetime, until: datetime,
          teams: dict[str, str]) -> dict[str, Any]:
    """{"series": [{"name", "total_usd", "points": [{"t", "usd"}]}], "total_usd"} with exact decimal strings;
    `teams` maps key ids to their team."""
    if by not in DIMENSIONS:
        raise bad_request(f"by must be one of {', '.join(DIMENSIONS)}", "by")
    if bucket not in BUCKETS:
        raise bad_request(f"bucket must be one of {', '.join(BUCKETS)}", "bucket")
    width = BUCKETS[bucket]
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    total = Decimal(0)
    if by in ("key", "team"):
        for hour in reader.hourly(since, until):
            name = hour.key_id if by == "key" else teams.get(hour.key_id, "")
            sums[name or NONE][hour.hour.isoformat()[:width]] += hour.cost_usd
            total += hour.cost_usd
    else:
        for row in reader.rows(since, until):
            cost = Decimal(row.cost_usd or "0")
            total += cost
            names = [row.end_user] if by == "user" else _tags(row)
            for name in names or [""]:
                sums[name or NONE][row.ts[:width]] += cost
    totals = {name: sum(points.values(), Decimal(0)) for name, points in sums.items()}
    series = [{"name": name, "total_usd": str(totals[name]),
               "points": [{"t": t, "usd": str(v)} for t, v in sorted(sums[name].items())]}
              for name in sorted(totals, key=lambda n: (-totals[n], n))]
    return {"by": by, "bucket": bucket, "since": since.isoformat(), "until": until.isoformat(),
            "total_usd": str(total), "series": series}


def _tags(row: LedgerRow) -> list[str]:
    tags = row.tags
    if isinstance(tags, str):
        try:
            tags = orjson.loads(tags or "[]")
        except orjson.JSONDecodeError:
            return []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO time from a query value (naive means UTC); None when absent; 400 naming `name` when bad."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name}: {value!r} is not an ISO time like 2026-12-01T08:00", name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

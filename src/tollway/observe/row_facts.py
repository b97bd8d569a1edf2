"""What a ledger row says beyond its columns: why it failed, whether it fell back, whether it was hedged.

Metrics, the dashboard and `tollway report` must agree on these definitions, so they live in one place:

- error reason: the failure kind of the last attempt that failed (`server_error`, `rate_limited`,
  `timeout`, ... from providers/failure.py), `stream_interrupted` for a stream broken after its first
  byte, `client_disconnected`, `breaker_open` when every deployment was skipped, else `http_<status>`.
- fallback: the answer came from another deployment than the plan's first, because an earlier one failed
  or was skipped (a retry on the same deployment is not a fallback).
- hedged: a second attempt ran alongside the first (the loser is recorded with outcome `cancelled`).

Attempts with a side outcome (`shadow`, `cancelled` hedge losers, `routing_overhead`) are not steps of
the answer's own walk: they never count as the failure that caused a fallback or an error.
"""

from __future__ import annotations

from tollway.ledger.schema import LedgerRow

_NOT_TRIED = ("skipped",)
SIDE_OUTCOMES = ("shadow", "cancelled", "routing_overhead")  # attempts beside the answer's own path


def error_reason(row: LedgerRow) -> str | None:
    """None for an answered request; otherwise a short, bounded reason (safe as a metric label)."""
    if row.status == "ok":
        return None
    if row.status == "stream_error":
        return "stream_interrupted"
    if row.status == "cancelled":
        return "client_disconnected"
    attempts = row.attempts
    for attempt in reversed(attempts):
        if attempt.get("outcome") not in ("ok", *_NOT_TRIED, *SIDE_OUTCOMES) and attempt.get("kind"):
            return str(attempt["kind"])
    if attempts and all(a.get("outcome") in _NOT_TRIED for a in attempts):
        return "breaker_open"
    return f"http_{row.http_status}"


def fell_back(row: LedgerRow) -> bool:
    """Served by a deployment other than the plan's first, after that one failed or was skipped."""
    if not row.deployment:
        return False
    for attempt in row.attempts:
        if attempt.get("outcome") == "ok":
            return False
        if attempt.get("outcome") in SIDE_OUTCOMES:
            continue
        if attempt.get("deployment") != row.deployment:
            return True
    return False


def hedged(row: LedgerRow) -> bool:
    return any(a.get("outcome") == "cancelled" or a.get("hedge") for a in row.attempts)


def total_tokens(row: LedgerRow) -> int:
    """Prompt plus completion tokens (cached and reasoning tokens are inside those two)."""
    return row.prompt_tokens + row.completion_tokens

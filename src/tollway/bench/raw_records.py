"""Every request's raw timings as JSON lines (`--raw`), so any figure in the report can be recomputed.

Why: a benchmark whose summaries cannot be checked against its observations asks to be taken on trust.
Times are milliseconds relative to the request's latency origin; `origin_ms` places each request on the
level's own timeline (0 = the earliest origin in the level).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tollway.bench.record import RequestRecord
from tollway.bench.runner import BenchResult


def write_raw(result: BenchResult, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for target_result in result.results:
            for label, records in target_result.records.items():
                base = min((r.origin_ns for r in records), default=0)
                for r in records:
                    handle.write(orjson.dumps(_line(target_result.target.name, label, r, base)) + b"\n")
    return path


def _line(target: str, label: str, r: RequestRecord, base_ns: int) -> dict:
    def rel(t: int | None) -> float | None:
        return None if t is None else (t - r.origin_ns) / 1e6

    return {
        "target": target, "level": label, "index": r.index,
        "measured": r.measured, "origin_ms": (r.origin_ns - base_ns) / 1e6,
        "scheduled": r.scheduled_ns is not None, "sent_ms": rel(r.sent_ns) if r.sent_ns else None,
        "response_ms": rel(r.response_ns), "content_ms": [rel(t) for t in r.content_ns],
        "end_ms": rel(r.end_ns), "status": r.status, "error": r.error,
        "error_detail": r.error_detail, "retry_after": r.retry_after,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens, "requested_output_tokens": r.requested_output_tokens,
        "finish_reason": r.finish_reason, "stale_connection_retries": r.stale_connection_retries,
    }

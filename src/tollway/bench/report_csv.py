"""CSV report: one row per target and load level, for spreadsheets and quick plotting.

Why a flat file next to the JSON: people compare deployment options in spreadsheets; the columns carry
their unit in the name (_ms, _per_s) so a pasted column cannot be misread.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tollway.bench.level_summary import LevelSummary
from tollway.bench.record import ERROR_KINDS
from tollway.bench.runner import BenchResult

LATENCY_METRICS = ("ttft", "tpot", "itl_chunk", "itl_token", "e2e")
STATS = ("mean", "p50", "p90", "p95", "p99", "p99_ci_low", "p99_ci_high")


def row(model: str, summary: LevelSummary) -> dict[str, Any]:
    """The CSV row of one level."""
    tp, tokens, client, open_loop = summary.throughput, summary.tokens, summary.client, summary.open_loop
    out: dict[str, Any] = {
        "target": summary.target, "model": model, "mode": summary.mode, "level": summary.level,
        "arrivals": summary.arrivals or "", "valid": summary.valid, "measured_requests": summary.measured_requests,
        "ok_requests": summary.ok_requests, "failed_requests": summary.failed_requests,
        "duration_s": round(summary.duration_s, 4), "requests_per_s": tp.requests_per_s,
        "output_tokens_per_s": tp.output_tokens_per_s, "total_tokens_per_s": tp.total_tokens_per_s,
        "output_tokens_per_min": tp.output_tokens_per_min, "total_tokens_per_min": tp.total_tokens_per_min,
        "mean_inflight": tp.mean_inflight, "goodput_share": summary.goodput.share,
        "goodput_requests_per_s": summary.goodput.requests_per_s,
    }
    for metric in LATENCY_METRICS:
        dist = summary.latency_ms.get(metric)
        for stat in STATS:
            out[f"{metric}_{stat}_ms"] = getattr(dist, stat) if dist else ""
    out.update({
        "tokens_per_chunk_mean": tokens.tokens_per_chunk.mean if tokens.tokens_per_chunk else "",
        "input_tokens_mean": _blank(tokens.input_mean), "output_tokens_mean": _blank(tokens.output_mean),
        "usage_missing": tokens.usage_missing, "chunks_exceed_usage": tokens.chunks_exceed_usage,
    })
    out.update({f"errors_{kind}": summary.errors.get(kind, 0) for kind in ERROR_KINDS})
    out["errors_retry_after_seen"] = summary.errors.get("retry_after_seen", 0)
    out.update({
        "client_loop_lag_p99_ms": client.loop_lag_p99_ms, "client_cpu_percent": client.cpu_percent,
        "client_send_delay_p50_ms": client.send_delay_p50_ms, "client_send_delay_p99_ms": client.send_delay_p99_ms,
        "offered_rate": open_loop.offered_rate if open_loop else "",
        "achieved_rate": open_loop.achieved_rate if open_loop else "",
        "schedule_lag_p99_ms": open_loop.schedule_lag_ms.p99 if open_loop and open_loop.schedule_lag_ms else "",
        "invalid_reasons": " | ".join(summary.invalid_reasons),
    })
    return out


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def write_csv(result: BenchResult, path: Path) -> Path:
    rows = [row(r.target.model, s) for r in result.results for s in r.levels]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        if rows:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path

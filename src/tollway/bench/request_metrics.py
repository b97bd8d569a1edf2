"""Per-request metrics, derived from a RequestRecord. The definitions are the ones in docs/bench.md.

Why one place: benchmarks disagree mostly because they define these differently. Here:
- TTFT: latency origin to the first event carrying generated text (not the role-only first chunk).
- E2E: latency origin to the end of the response ([DONE], or the end of the stream).
- TPOT: (E2E - TTFT) / (output tokens - 1), output tokens from the server's usage.
- ITL per chunk: the gaps between consecutive content events.
- ITL per token: each gap divided by the request's mean tokens per chunk, so a server that packs
  several tokens per event is not reported as several times slower per token.
- tokens per chunk: usage completion tokens / content events.
The origin is the scheduled send time in open-loop runs and, in closed-loop runs, the moment the request's
last byte was handed to the socket (sse_client.request_trace).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tollway.bench.record import RequestRecord
from tollway.bench.slo import Slo, meets_slo

NS = 1e9
_EMPTY = np.empty(0)


@dataclass(slots=True)
class RequestMetrics:
    """Metrics of one request in seconds; None where the request could not provide the value."""

    ok: bool
    error: str | None
    ttft_s: float | None
    e2e_s: float | None
    tpot_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    chunks: int
    tokens_per_chunk: float | None
    itl_chunk_s: np.ndarray
    itl_token_s: np.ndarray
    met_slo: bool
    schedule_lag_s: float | None


def request_metrics(record: RequestRecord, slo: Slo) -> RequestMetrics:
    """Derive the metrics of one request and judge it against the SLOs."""
    chunks = len(record.content_ns)
    ttft = (record.content_ns[0] - record.origin_ns) / NS if chunks else None
    e2e = (record.end_ns - record.origin_ns) / NS if record.ok else None
    output = record.completion_tokens
    tpot = None
    if record.ok and ttft is not None and output is not None and output > 1:
        tpot = (e2e - ttft) / (output - 1)
    per_chunk = output / chunks if output and chunks else None
    gaps = np.diff(np.asarray(record.content_ns, dtype=np.float64)) / NS if chunks > 1 else _EMPTY
    per_token = gaps / per_chunk if per_chunk and gaps.size else _EMPTY
    not_applicable = set()
    if output is not None and output <= 1:
        not_applicable.add("tpot")
    if record.ok and chunks <= 1:
        not_applicable.add("itl")
    measured = {"ttft": ttft, "tpot": tpot, "e2e": e2e, "itl": float(gaps.max()) if gaps.size else None}
    lag = (record.sent_ns - record.scheduled_ns) / NS if record.scheduled_ns is not None and record.sent_ns else None
    return RequestMetrics(
        ok=record.ok, error=record.error, ttft_s=ttft if record.ok else None, e2e_s=e2e, tpot_s=tpot,
        input_tokens=record.prompt_tokens, output_tokens=output, cached_tokens=record.cached_tokens,
        chunks=chunks, tokens_per_chunk=per_chunk, itl_chunk_s=gaps if record.ok else _EMPTY,
        itl_token_s=per_token if record.ok else _EMPTY,
        met_slo=meets_slo(slo, record.ok, measured, frozenset(not_applicable)), schedule_lag_s=lag)

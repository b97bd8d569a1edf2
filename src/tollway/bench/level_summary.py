"""Aggregate one load level of one target: latency distributions, throughput, goodput, errors, validity.

Why these rules:
- The measured window runs from the latency origin of the first measured request to the end of the last
  one; throughput is counted over it, so requests in flight at the end are waited for, not dropped.
- Latency distributions describe successful requests; every measured request, failed or not, is in the
  goodput denominator and in the error breakdown, so failures cannot make a target look better.
- Open loop: the run is invalid when the target completed fewer requests per second than were offered
  (beyond the tolerance), or when the client could not send on schedule; its latencies then describe an
  overloaded queue, not the offered rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tollway.bench.client_monitor import ClientLoad, load_warnings
from tollway.bench.loadgen import RATE, LevelRun
from tollway.bench.record import ERROR_KINDS, RATE_LIMITED, RequestRecord
from tollway.bench.request_metrics import NS, RequestMetrics, request_metrics
from tollway.bench.slo import Slo
from tollway.bench.stats import Summary, summarize

MIN_REQUESTS_FOR_P99 = 100


@dataclass(slots=True)
class Throughput:
    requests_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    input_tokens_per_s: float
    output_tokens_per_min: float
    total_tokens_per_min: float
    mean_inflight: float


@dataclass(slots=True)
class Goodput:
    """Requests that succeeded and met every SLO; share is of all measured requests."""

    requests: int
    share: float
    requests_per_s: float


@dataclass(slots=True)
class TokenCheck:
    """Token figures from usage, and where usage and the stream disagree."""

    input_mean: float | None
    output_mean: float | None
    requested_output_mean: float | None
    cached_share: float | None
    tokens_per_chunk: Summary | None
    usage_missing: int
    chunks_exceed_usage: int
    chunks_differ_from_usage: int
    output_shorter_than_requested: int
    output_longer_than_requested: int


@dataclass(slots=True)
class OpenLoopCheck:
    """Rates in requests/s. offered: the realised schedule; achieved: successful completions."""

    target_rate: float
    offered_rate: float
    send_rate: float
    achieved_rate: float
    schedule_lag_ms: Summary | None
    inflight_cap_waits: int


@dataclass(slots=True)
class LevelSummary:
    target: str
    mode: str
    level: float
    label: str
    arrivals: str | None
    valid: bool
    invalid_reasons: list[str]
    warnings: list[str]
    measured_requests: int
    ok_requests: int
    failed_requests: int
    warmup_requests: int
    duration_s: float
    throughput: Throughput
    goodput: Goodput
    latency_ms: dict[str, Summary | None]
    tokens: TokenCheck
    errors: dict[str, int]
    error_examples: dict[str, str]
    client: ClientLoad
    open_loop: OpenLoopCheck | None = None
    exact_output: bool = False
    stale_connection_retries: int = 0
    notes: list[str] = field(default_factory=list)


def summarize_level(target: str, run: LevelRun, slo: Slo, exact_output: bool, rate_tolerance: float,
                    seed: int = 0) -> LevelSummary:
    """The summary of one level; `rate_tolerance` is the open-loop shortfall allowed (0.05 = 5%)."""
    measured = [r for r in run.records if r.measured]
    metrics = [request_metrics(r, slo) for r in measured]
    ok = [m for m in metrics if m.ok]
    duration_s = _window_s(measured)
    latency = _latency(ok, seed)
    errors, examples = _errors(measured)
    summary = LevelSummary(
        target=target, mode=run.level.mode, level=run.level.value, label=run.level.label,
        arrivals=run.level.arrivals if run.level.mode == RATE else None, valid=True, invalid_reasons=[],
        warnings=[], measured_requests=len(measured), ok_requests=len(ok),
        failed_requests=len(measured) - len(ok), warmup_requests=len(run.records) - len(measured),
        duration_s=duration_s, throughput=_throughput(measured, ok, duration_s),
        goodput=_goodput(metrics, duration_s), latency_ms=latency, tokens=_tokens(measured, ok, exact_output, seed),
        errors=errors, error_examples=examples, client=run.client, exact_output=exact_output,
        stale_connection_retries=sum(r.stale_connection_retries for r in measured))
    if run.level.mode == RATE:
        summary.open_loop = _open_loop(run, measured, rate_tolerance, summary, seed)
    summary.warnings.extend(_warnings(summary))
    return summary


def _window_s(measured: list[RequestRecord]) -> float:
    if not measured:
        return 0.0
    return max(0.0, (max(r.end_ns for r in measured) - min(r.origin_ns for r in measured)) / NS)


def _latency(ok: list[RequestMetrics], seed: int) -> dict[str, Summary | None]:
    def dist(values) -> Summary | None:
        found = summarize(values, seed)
        return found.scaled(1000.0) if found else None

    return {
        "ttft": dist([m.ttft_s for m in ok if m.ttft_s is not None]),
        "tpot": dist([m.tpot_s for m in ok if m.tpot_s is not None]),
        "itl_chunk": dist(np.concatenate([m.itl_chunk_s for m in ok]) if ok else []),
        "itl_token": dist(np.concatenate([m.itl_token_s for m in ok]) if ok else []),
        "e2e": dist([m.e2e_s for m in ok if m.e2e_s is not None]),
    }


def _rate(count: float, duration_s: float) -> float:
    return count / duration_s if duration_s > 0 else 0.0


def _throughput(measured: list[RequestRecord], ok: list[RequestMetrics], duration_s: float) -> Throughput:
    output = sum(m.output_tokens or 0 for m in ok)
    prompt = sum(m.input_tokens or 0 for m in ok)
    busy_s = sum((r.end_ns - r.origin_ns) / NS for r in measured)
    return Throughput(
        requests_per_s=_rate(len(ok), duration_s), output_tokens_per_s=_rate(output, duration_s),
        total_tokens_per_s=_rate(output + prompt, duration_s), input_tokens_per_s=_rate(prompt, duration_s),
        output_tokens_per_min=_rate(output, duration_s) * 60.0,
        total_tokens_per_min=_rate(output + prompt, duration_s) * 60.0, mean_inflight=_rate(busy_s, duration_s))


def _goodput(metrics: list[RequestMetrics], duration_s: float) -> Goodput:
    good = sum(1 for m in metrics if m.met_slo)
    return Goodput(good, good / len(metrics) if metrics else 0.0, _rate(good, duration_s))


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _tokens(measured: list[RequestRecord], ok: list[RequestMetrics], exact: bool, seed: int) -> TokenCheck:
    # (record, its reported completion tokens) of every answered request whose usage was reported
    with_usage = [(r, r.completion_tokens) for r in measured if r.ok and r.completion_tokens is not None]
    prompts = [r.prompt_tokens for r, _ in with_usage if r.prompt_tokens is not None]
    cached = sum(r.cached_tokens or 0 for r, _ in with_usage)
    # (reported completion tokens, requested output tokens) where the request asked for a length
    requested = [(completion, r.requested_output_tokens) for r, completion in with_usage if r.requested_output_tokens]
    return TokenCheck(
        input_mean=_mean(prompts), output_mean=_mean([completion for _, completion in with_usage]),
        requested_output_mean=_mean([r.requested_output_tokens for r in measured if r.requested_output_tokens]),
        cached_share=cached / sum(prompts) if prompts and sum(prompts) else None,
        tokens_per_chunk=summarize([m.tokens_per_chunk for m in ok if m.tokens_per_chunk is not None], seed),
        usage_missing=sum(1 for r in measured if r.ok and r.completion_tokens is None),
        chunks_exceed_usage=sum(1 for r, completion in with_usage if len(r.content_ns) > completion),
        chunks_differ_from_usage=sum(1 for r, completion in with_usage if len(r.content_ns) != completion),
        output_shorter_than_requested=sum(1 for completion, wanted in requested if completion < wanted),
        output_longer_than_requested=sum(1 for completion, wanted in requested if completion > wanted))


def _errors(measured: list[RequestRecord]) -> tuple[dict[str, int], dict[str, str]]:
    counts = Counter(r.error for r in measured if r.error)
    errors = {kind: counts.get(kind, 0) for kind in ERROR_KINDS}
    errors["retry_after_seen"] = sum(1 for r in measured if r.error == RATE_LIMITED and r.retry_after)
    examples: dict[str, str] = {}
    for record in measured:
        if record.error and record.error not in examples:
            examples[record.error] = record.error_detail or ""
    return errors, examples


def _span_rate(times_ns: list[int]) -> float:
    """(n - 1) events over the span from the first to the last: a rate that ignores the run's edges."""
    if len(times_ns) < 2:
        return 0.0
    span = (max(times_ns) - min(times_ns)) / NS
    return (len(times_ns) - 1) / span if span > 0 else float("inf")


def _open_loop(run: LevelRun, measured: list[RequestRecord], tolerance: float, summary: LevelSummary,
               seed: int) -> OpenLoopCheck:
    offered = _span_rate([r.scheduled_ns for r in measured if r.scheduled_ns is not None])
    sent = _span_rate([r.sent_ns for r in measured if r.sent_ns])
    ok_ends = [r.end_ns for r in measured if r.ok]
    achieved = _span_rate(ok_ends) if len(ok_ends) > 1 else 0.0
    lags = [(r.sent_ns - r.scheduled_ns) / NS for r in measured if r.scheduled_ns is not None and r.sent_ns]
    lag = summarize(lags, seed)
    check = OpenLoopCheck(run.level.value, offered, sent, achieved, lag.scaled(1000.0) if lag else None,
                          run.inflight_cap_waits)
    floor = (1.0 - tolerance) * offered
    if achieved < floor:
        summary.valid = False
        summary.invalid_reasons.append(
            f"target completed {achieved:.2f} req/s successfully of {offered:.2f} req/s offered "
            f"(more than {tolerance:.0%} short): it cannot keep up with this rate")
    if sent < floor:
        summary.valid = False
        summary.invalid_reasons.append(
            f"client sent {sent:.2f} req/s of {offered:.2f} req/s scheduled: the client fell behind"
            + (f" (in-flight cap reached {run.inflight_cap_waits} times)" if run.inflight_cap_waits else ""))
    return check


def _warnings(summary: LevelSummary) -> list[str]:
    medians = {name: dist.p50 if (dist := summary.latency_ms.get(key)) else None
               for name, key in (("ttft", "ttft"), ("itl", "itl_chunk"), ("e2e", "e2e"))}
    found = load_warnings(summary.client, medians, open_loop=summary.mode == RATE)
    if summary.measured_requests < MIN_REQUESTS_FOR_P99:
        found.append(f"only {summary.measured_requests} measured requests: p99 rests on very few samples "
                     "(see its confidence interval)")
    tokens = summary.tokens
    if tokens.usage_missing:
        found.append(f"{tokens.usage_missing} successful requests had no usage in the stream: their tokens are "
                     "not counted and TPOT SLOs count them as misses")
    if tokens.chunks_exceed_usage:
        found.append(f"{tokens.chunks_exceed_usage} requests had more content chunks than reported output "
                     "tokens: the server's usage under-reports")
    if summary.exact_output and tokens.output_shorter_than_requested + tokens.output_longer_than_requested:
        found.append(f"{tokens.output_shorter_than_requested + tokens.output_longer_than_requested} requests "
                     "did not get exactly the requested output length (min_tokens/ignore_eos not honoured?)")
    return found

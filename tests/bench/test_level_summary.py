"""Metric definitions on hand-made records whose right answers are known."""

from __future__ import annotations

import pytest

from tollway.bench.capacity import capacity_report, target_capacity
from tollway.bench.client_monitor import ClientLoad
from tollway.bench.level_summary import summarize_level
from tollway.bench.loadgen import CONCURRENCY, RATE, LevelRun, LoadLevel
from tollway.bench.record import RATE_LIMITED, SERVER_ERROR, TIMEOUT, RequestRecord
from tollway.bench.request_metrics import request_metrics
from tollway.bench.slo import Slo

MS = 1_000_000
IDLE = ClientLoad(0.1, 0.2, 0.3, 5.0, 1.0)


def ok_record(index: int, origin_ms: float, ttft_ms: float, gap_ms: float, chunks: int, tokens: int,
              scheduled: bool = False, measured: bool = True) -> RequestRecord:
    origin = int(origin_ms * MS)
    content = [origin + int((ttft_ms + i * gap_ms) * MS) for i in range(chunks)]
    return RequestRecord(index=index, measured=measured, requested_output_tokens=tokens,
                         scheduled_ns=origin if scheduled else None, origin_ns=origin, sent_ns=origin,
                         response_ns=origin + MS, end_ns=content[-1], content_ns=content, done=True, status=200,
                         prompt_tokens=100, completion_tokens=tokens, finish_reason="length")


def failed_record(index: int, origin_ms: float, kind: str, retry_after: str | None = None) -> RequestRecord:
    origin = int(origin_ms * MS)
    return RequestRecord(index=index, measured=True, origin_ns=origin, sent_ns=origin, end_ns=origin + 5 * MS,
                         status=429 if kind == RATE_LIMITED else None, error=kind, error_detail="x",
                         retry_after=retry_after)


def test_ttft_tpot_and_itl_definitions():
    # 10 tokens in 5 chunks of 2: first text at 200 ms, then a chunk every 40 ms (20 ms per token)
    metrics = request_metrics(ok_record(0, 0, 200, 40, chunks=5, tokens=10), Slo())
    assert metrics.ttft_s == pytest.approx(0.200)
    assert metrics.e2e_s == pytest.approx(0.360)
    assert metrics.tpot_s == pytest.approx(0.160 / 9)
    assert metrics.tokens_per_chunk == 2
    assert metrics.itl_chunk_s.tolist() == pytest.approx([0.040] * 4)
    assert metrics.itl_token_s.tolist() == pytest.approx([0.020] * 4)


def test_tokens_come_from_usage_not_chunks_and_mismatches_are_counted():
    honest = ok_record(0, 0, 10, 10, chunks=4, tokens=8)
    lying = ok_record(1, 100, 10, 10, chunks=6, tokens=3)
    silent = ok_record(2, 200, 10, 10, chunks=4, tokens=8)
    silent.completion_tokens = silent.prompt_tokens = None
    run = LevelRun(LoadLevel(CONCURRENCY, 1), [honest, lying, silent], IDLE)
    summary = summarize_level("t", run, Slo(tpot_s=1.0), exact_output=False, rate_tolerance=0.05)
    assert summary.tokens.output_mean == pytest.approx((8 + 3) / 2)
    assert summary.tokens.usage_missing == 1
    assert summary.tokens.chunks_exceed_usage == 1
    assert summary.tokens.chunks_differ_from_usage == 2
    assert summary.goodput.requests == 2  # the request without usage cannot prove its TPOT
    assert any("no usage" in w for w in summary.warnings)
    assert any("under-reports" in w for w in summary.warnings)


def test_failures_are_goodput_misses_and_broken_down_by_kind():
    records = [ok_record(i, i * 100, 50, 10, 5, 5) for i in range(6)]
    records += [failed_record(6, 600, RATE_LIMITED, "2"), failed_record(7, 700, RATE_LIMITED),
                failed_record(8, 800, TIMEOUT), failed_record(9, 900, SERVER_ERROR)]
    run = LevelRun(LoadLevel(CONCURRENCY, 1), records, IDLE)
    summary = summarize_level("t", run, Slo(ttft_s=0.1), exact_output=True, rate_tolerance=0.05)
    assert (summary.measured_requests, summary.ok_requests, summary.failed_requests) == (10, 6, 4)
    assert summary.goodput.requests == 6 and summary.goodput.share == pytest.approx(0.6)
    assert summary.errors["rate_limited"] == 2 and summary.errors["retry_after_seen"] == 1
    assert summary.errors["timeout"] == 1 and summary.errors["server_error"] == 1
    assert summary.latency_ms["ttft"].n == 6  # latency distributions describe successful requests


def test_warmup_is_excluded_and_throughput_uses_the_measured_window():
    warm = [ok_record(i, i * 100, 50, 10, 5, 5, measured=False) for i in range(3)]
    measured = [ok_record(3 + i, 1000 + i * 250, 50, 10, 11, 11) for i in range(5)]
    run = LevelRun(LoadLevel(CONCURRENCY, 1), warm + measured, IDLE)
    summary = summarize_level("t", run, Slo(), exact_output=True, rate_tolerance=0.05)
    window_s = (4 * 250 + 50 + 10 * 10) / 1000
    assert summary.warmup_requests == 3 and summary.measured_requests == 5
    assert summary.duration_s == pytest.approx(window_s)
    assert summary.throughput.requests_per_s == pytest.approx(5 / window_s)
    assert summary.throughput.output_tokens_per_s == pytest.approx(55 / window_s)
    assert summary.throughput.total_tokens_per_s == pytest.approx(555 / window_s)
    assert summary.throughput.output_tokens_per_min == pytest.approx(60 * 55 / window_s)


def test_open_loop_that_keeps_up_is_valid_and_one_that_falls_behind_is_not():
    keeping_up = [ok_record(i, i * 100, 50, 10, 5, 5, scheduled=True) for i in range(40)]
    run = LevelRun(LoadLevel(RATE, 10.0), keeping_up, IDLE)
    summary = summarize_level("t", run, Slo(), exact_output=True, rate_tolerance=0.05)
    assert summary.valid and summary.open_loop.offered_rate == pytest.approx(10.0)
    assert summary.open_loop.achieved_rate == pytest.approx(10.0, rel=0.01)
    # the same schedule, but each request waits longer than the last: the server serves 5 req/s
    behind = [ok_record(i, i * 100, 50 + i * 100, 10, 5, 5, scheduled=True) for i in range(40)]
    summary = summarize_level("t", LevelRun(LoadLevel(RATE, 10.0), behind, IDLE), Slo(), True, 0.05)
    assert not summary.valid
    assert "cannot keep up" in summary.invalid_reasons[0]
    assert summary.open_loop.achieved_rate == pytest.approx(5.0, rel=0.01)


def test_capacity_is_the_highest_contiguous_level_meeting_the_slos():
    def level(c: int, ttft_ms: float):
        records = [ok_record(i, i * 10, ttft_ms, 10, 5, 5) for i in range(20)]
        return summarize_level("t", LevelRun(LoadLevel(CONCURRENCY, c), records, IDLE), Slo(ttft_s=0.5), True, 0.05)

    levels = [level(1, 100), level(4, 200), level(8, 900), level(16, 300)]
    capacity = target_capacity("t", "m", levels, goodput_target=0.95)
    assert capacity.met and capacity.bounded and capacity.max_concurrency == 4
    assert capacity.levels_meeting_slo == [1, 4, 16]
    assert capacity.requests_per_s == pytest.approx(levels[1].throughput.requests_per_s)
    open_ended = target_capacity("t", "m", levels[:2], goodput_target=0.95)
    assert open_ended.max_concurrency == 4 and not open_ended.bounded
    none = capacity_report({"t": ("m", [level(1, 900)])}, Slo(ttft_s=0.5), 0.95).targets["t"]
    assert not none.met and none.max_concurrency is None

"""`tollway bench` against the real emulator process: the figures must match what the emulator was told.

The emulator paces token t of an answer at ttft + t * tpot after the request arrives, so at low load the
measured TTFT and TPOT must sit within a few percent of the configured values.
"""

from __future__ import annotations

import pytest

from tollway.bench.lengths import parse_length
from tollway.bench.loadgen import CONCURRENCY, CONSTANT, RATE, LoadLevel, RunBounds
from tollway.bench.runner import BenchConfig, run_benchmark
from tollway.bench.slo import Slo, parse_slo
from tollway.bench.targets import Target
from tollway.bench.workload import SyntheticWorkload

pytestmark = pytest.mark.slow


def config(targets: list[Target], levels: list[LoadLevel], bounds: RunBounds, slo: Slo | None = None,
           output_tokens: str = "32", timeout_s: float = 30.0) -> BenchConfig:
    workload = SyntheticWorkload(parse_length("24", "--input-tokens"), parse_length(output_tokens, "--output-tokens"),
                                 seed=11)
    return BenchConfig(targets=targets, levels=levels, bounds=bounds, workload=workload, slo=slo or Slo(),
                       timeout_s=timeout_s)


def only_level(result):
    (target_result,) = result.results
    (summary,) = target_result.levels
    return target_result, summary


def test_ttft_and_tpot_match_the_configured_delays_at_low_load(emulator):
    emulator.set_profile("paced", {"ttft_ms": 200, "tpot_ms": 20, "tokens_per_chunk": 1})
    target = Target("emu", emulator.base_url("openai"), "paced")
    result = run_benchmark(config([target], [LoadLevel(CONCURRENCY, 2)], RunBounds(requests=8, warmup_requests=2),
                                  output_tokens="16"))
    target_result, summary = only_level(result)
    assert target_result.exact_output and summary.ok_requests == 8 and summary.warmup_requests == 2
    ttft, tpot, e2e = (summary.latency_ms[k] for k in ("ttft", "tpot", "e2e"))
    assert 200.0 <= ttft.p50 <= 210.0, ttft
    assert 19.4 <= tpot.p50 <= 20.6, tpot
    assert 19.4 <= summary.latency_ms["itl_token"].p50 <= 20.6
    assert 500.0 <= e2e.p50 <= 525.0  # 200 ms + 15 tokens x 20 ms
    assert summary.tokens.output_mean == 16 and summary.tokens.output_shorter_than_requested == 0
    # every request asked for exactly 16 tokens, streamed with usage
    bodies = [entry["body"] for entry in emulator.requests("paced")]
    assert all(b["min_tokens"] == 16 and b["ignore_eos"] is True and b["max_tokens"] == 16 for b in bodies[1:])
    assert all(b["stream_options"] == {"include_usage": True} for b in bodies)


def test_chunks_carrying_several_tokens_do_not_inflate_token_counts(emulator):
    emulator.set_profile("chunky", {"ttft_ms": 50, "tpot_ms": 10, "tokens_per_chunk": 4})
    target = Target("emu", emulator.base_url("openai"), "chunky")
    result = run_benchmark(config([target], [LoadLevel(CONCURRENCY, 2)], RunBounds(requests=8)))
    _, summary = only_level(result)
    assert summary.tokens.output_mean == 32  # from usage; the stream had 8 content events per answer
    assert summary.tokens.tokens_per_chunk.mean == pytest.approx(4.0)
    assert summary.tokens.chunks_differ_from_usage == 8 and summary.tokens.chunks_exceed_usage == 0
    expected_tokens_per_s = 8 * 32 / summary.duration_s
    assert summary.throughput.output_tokens_per_s == pytest.approx(expected_tokens_per_s)
    # a chunk leaves every 4 tokens x 10 ms; per token that is 10 ms, not 40
    assert 38.0 <= summary.latency_ms["itl_chunk"].p50 <= 42.0
    assert 9.5 <= summary.latency_ms["itl_token"].p50 <= 10.5


def test_rate_limits_and_timeouts_are_goodput_misses(emulator):
    # request 1 of the model is the probe; measured requests are its requests 2..21
    emulator.set_profile("faulty", {"ttft_ms": 10, "tpot_ms": 1, "faults": [
        {"kind": "rate_limit", "every": 5, "retry_after_s": 2},
        {"kind": "hang", "every": 7}]})
    target = Target("emu", emulator.base_url("openai"), "faulty")
    result = run_benchmark(config([target], [LoadLevel(CONCURRENCY, 2)], RunBounds(requests=20),
                                  slo=parse_slo("ttft=1s,e2e=5s"), output_tokens="8", timeout_s=1.0))
    _, summary = only_level(result)
    assert summary.errors["rate_limited"] == 4 and summary.errors["retry_after_seen"] == 4
    assert summary.errors["timeout"] == 3
    assert (summary.measured_requests, summary.ok_requests) == (20, 13)
    assert summary.goodput.requests == 13 and summary.goodput.share == pytest.approx(0.65)
    assert "429" in summary.error_examples["rate_limited"]
    capacity = result.capacity.targets["emu"]
    assert not capacity.met  # 65% of requests met the SLOs, below the 95% goodput target


def test_open_loop_flags_a_target_that_cannot_keep_up(emulator, tmp_path):
    # one request at a time, ~125 ms each: about 8 req/s of capacity
    emulator.set_profile("one-slot", {"ttft_ms": 20, "tpot_ms": 5, "max_running": 1})
    target = Target("emu", emulator.base_url("openai"), "one-slot")
    levels = [LoadLevel(RATE, 3.0, CONSTANT), LoadLevel(RATE, 25.0, CONSTANT)]
    result = run_benchmark(config([target], levels, RunBounds(duration_s=1.0), output_tokens="20"))
    light, heavy = result.results[0].levels
    assert light.valid and light.open_loop.achieved_rate == pytest.approx(3.0, rel=0.05)
    assert not heavy.valid and "cannot keep up" in heavy.invalid_reasons[0]
    assert heavy.open_loop.offered_rate == pytest.approx(25.0, rel=0.01)
    assert heavy.open_loop.achieved_rate < 10.0
    # latency counts from the scheduled time, so the queue shows: the last requests waited seconds
    assert heavy.latency_ms["ttft"].max > 1500.0
    assert result.capacity.targets["emu"].max_rate == 3.0
    from tollway.bench.plots import write_plots  # the invalid level is drawn with a red cross
    assert all(path.stat().st_size > 10_000 for path in write_plots(result, tmp_path))


def test_open_loop_latency_counts_from_the_schedule_when_the_client_falls_behind(emulator):
    emulator.set_profile("steady", {"ttft_ms": 100, "tpot_ms": 0})
    target = Target("emu", emulator.base_url("openai"), "steady")
    bounds = RunBounds(requests=10, max_inflight=1)  # the client can hold one request: it must fall behind
    result = run_benchmark(config([target], [LoadLevel(RATE, 20.0, CONSTANT)], bounds, output_tokens="4"))
    _, summary = only_level(result)
    assert not summary.valid
    assert any("client sent" in reason for reason in summary.invalid_reasons)
    # request i is due at i x 50 ms but can only leave after i answers of ~100 ms: ~50 ms more lag each
    lag = summary.open_loop.schedule_lag_ms
    assert 350.0 < lag.max < 900.0
    # TTFT counts from the schedule, so it includes that wait on top of the server's 100 ms
    assert summary.latency_ms["ttft"].max >= lag.max + 90.0

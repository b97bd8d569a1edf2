"""End to end against the real llama-server (a CPU model on 2 cores: a few requests, tiny outputs)."""

from __future__ import annotations

import pytest

from tollway.bench.lengths import parse_length
from tollway.bench.loadgen import CONCURRENCY, LoadLevel, RunBounds
from tollway.bench.runner import BenchConfig, run_benchmark
from tollway.bench.slo import parse_slo
from tollway.bench.targets import Target
from tollway.bench.workload import SyntheticWorkload

pytestmark = [pytest.mark.slow, pytest.mark.llama]


def test_bench_against_llama_server(llama_server):
    target = Target("llama", llama_server.base_url, llama_server.model)
    workload = SyntheticWorkload(parse_length("16", "--input-tokens"), parse_length("4", "--output-tokens"), seed=1)
    config = BenchConfig(targets=[target], levels=[LoadLevel(CONCURRENCY, 2)],
                         bounds=RunBounds(requests=3, warmup_requests=1), workload=workload,
                         slo=parse_slo("e2e=60s"), timeout_s=120.0)
    result = run_benchmark(config)
    assert result.results[0].exact_output  # llama-server accepts min_tokens/ignore_eos
    for summary in result.results[0].levels:
        # llama-server drops the keep-alive connection after each streamed answer: resent, not failed
        assert summary.ok_requests == 3, summary.error_examples
        assert summary.tokens.usage_missing == 0  # llama-server reports usage in the stream
        assert summary.tokens.output_mean == 4 and summary.tokens.chunks_exceed_usage == 0
        ttft, e2e = summary.latency_ms["ttft"], summary.latency_ms["e2e"]
        assert 0 < ttft.p50 <= e2e.p50
        assert summary.throughput.output_tokens_per_s > 0
        assert summary.goodput.share == 1.0
    assert result.capacity.targets["llama"].met

"""The bench's tables at 80 and 120 columns, from a real run against two emulators: nothing cut, key figures kept."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tollway.bench.lengths import parse_length
from tollway.bench.loadgen import CONCURRENCY, LoadLevel, RunBounds
from tollway.bench.report_table import _ms, print_report
from tollway.bench.runner import BenchConfig, run_benchmark
from tollway.bench.slo import parse_slo
from tollway.bench.targets import Target
from tollway.bench.workload import SyntheticWorkload

CUT = ("…", "...")


def run_two_targets(emulator_factory):
    fast = emulator_factory(ttft_ms=40, tpot_ms=2)
    slow = emulator_factory(ttft_ms=260, tpot_ms=2)
    config = BenchConfig(
        targets=[Target("api", fast.base_url("openai"), "m"), Target("gpu-h100", slow.base_url("openai"), "m")],
        levels=[LoadLevel(CONCURRENCY, 1), LoadLevel(CONCURRENCY, 4)], bounds=RunBounds(requests=8, warmup_requests=1),
        workload=SyntheticWorkload(parse_length("16", "--input-tokens"), parse_length("8", "--output-tokens"), 1),
        slo=parse_slo("ttft=150ms"))
    return run_benchmark(config)


def render(result, width: int, wide: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_report(result, console, wide)
    return console.file.getvalue()


@pytest.mark.slow
def test_results_and_capacity_fit_80_and_120_columns_without_cutting_a_figure(emulator_factory):
    result = run_two_targets(emulator_factory)
    for width in (80, 120):
        text = render(result, width)
        assert not any(cut in text for cut in CUT), text
        assert max(len(line) for line in text.splitlines()) <= width, text
        for target_result in result.results:
            for summary in target_result.levels:
                lat = summary.latency_ms
                for figure in (summary.label, summary.target, f"{summary.throughput.requests_per_s:.2f}",
                               _ms(lat["ttft"]), _ms(lat["ttft"], "p99"), _ms(lat["e2e"], "p99"),
                               f"{summary.goodput.share:.0%}"):
                    assert figure in text, (width, figure, text)
        assert "c=4" in text and "no level met the SLOs" in text  # the slow target never met ttft=150ms
    assert "not shown at 80 columns" in render(result, 80)

    wide = render(result, 80, wide=True)
    assert not any(cut in wide for cut in CUT), wide
    for header in ("ok/sent", "out tok/s", "TTFT p99 CI", "TPOT p50", "TPOT p99", "ITL/token p99", "E2E p50",
                   "E2E p99 CI", "total tok/s", "model"):
        assert header in wide
    assert "not shown" not in wide

"""Measured capacity: the highest load at which a target still met the SLOs.

Why: this is the number `tollway plan` needs to price a dedicated unit or a self-hosted GPU ("this box
serves N requests/s of this workload within the SLOs"). A level qualifies when its run is valid and its
goodput share (successful requests meeting every SLO, over all measured requests) reaches the target
share. Capacity is the highest level such that it and every lower level tested qualify: a lucky pass
above a failing level is noise, not capacity. When even the highest level tested qualified, the result is
a lower bound (`bounded` is false) and a wider sweep would find more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollway.bench.level_summary import LevelSummary
from tollway.bench.loadgen import CONCURRENCY
from tollway.bench.slo import Slo
from tollway.bench.stats import Summary

RULE = ("highest load level L such that every tested level <= L of this target is valid and has "
        "goodput share >= goodput_target")


@dataclass(slots=True)
class TargetCapacity:
    """Capacity of one target; the load fields are None when no level met the SLOs."""

    target: str
    model: str
    mode: str
    met: bool
    bounded: bool
    max_concurrency: int | None
    max_rate: float | None
    requests_per_s: float | None
    output_tokens_per_s: float | None
    total_tokens_per_s: float | None
    input_tokens_per_s: float | None
    mean_inflight: float | None
    goodput_share: float | None
    input_tokens_mean: float | None
    output_tokens_mean: float | None
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None
    e2e_p99_ms: float | None
    levels_tested: list[float]
    levels_meeting_slo: list[float]


@dataclass(slots=True)
class CapacityReport:
    slo_ms: dict[str, float | None]
    goodput_target: float
    rule: str
    targets: dict[str, TargetCapacity]


def qualifies(summary: LevelSummary, goodput_target: float) -> bool:
    return summary.valid and summary.measured_requests > 0 and summary.goodput.share >= goodput_target


def target_capacity(target: str, model: str, levels: list[LevelSummary], goodput_target: float) -> TargetCapacity:
    """Capacity of one target from its level summaries (any order)."""
    ordered = sorted(levels, key=lambda s: s.level)
    meeting = [s.level for s in ordered if qualifies(s, goodput_target)]
    best: LevelSummary | None = None
    for summary in ordered:
        if not qualifies(summary, goodput_target):
            break
        best = summary
    mode = ordered[0].mode if ordered else CONCURRENCY
    if best is None:
        return TargetCapacity(target, model, mode, False, True, None, None, None, None, None, None, None, None,
                              None, None, None, None, None, [s.level for s in ordered], meeting)
    latency = best.latency_ms
    return TargetCapacity(
        target=target, model=model, mode=mode, met=True, bounded=best is not ordered[-1],
        max_concurrency=int(best.level) if mode == CONCURRENCY else None,
        max_rate=best.level if mode != CONCURRENCY else None,
        requests_per_s=best.throughput.requests_per_s, output_tokens_per_s=best.throughput.output_tokens_per_s,
        total_tokens_per_s=best.throughput.total_tokens_per_s,
        input_tokens_per_s=best.throughput.input_tokens_per_s, mean_inflight=best.throughput.mean_inflight,
        goodput_share=best.goodput.share, input_tokens_mean=best.tokens.input_mean,
        output_tokens_mean=best.tokens.output_mean,
        ttft_p99_ms=_p99(latency, "ttft"), tpot_p99_ms=_p99(latency, "tpot"), e2e_p99_ms=_p99(latency, "e2e"),
        levels_tested=[s.level for s in ordered], levels_meeting_slo=meeting)


def _p99(latency: Mapping[str, Summary | None], metric: str) -> float | None:
    """p99 of one latency metric; None when the level measured none (e.g. no streamed answer for ttft)."""
    summary = latency.get(metric)
    return summary.p99 if summary is not None else None


def capacity_report(by_target: dict[str, tuple[str, list[LevelSummary]]], slo: Slo,
                    goodput_target: float) -> CapacityReport:
    """`by_target` maps target name to (model, its level summaries)."""
    return CapacityReport(slo_ms=slo.as_ms(), goodput_target=goodput_target, rule=RULE,
                          targets={name: target_capacity(name, model, levels, goodput_target)
                                   for name, (model, levels) in by_target.items()})

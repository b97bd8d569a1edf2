"""`strategy: fastest`: the lowest expected latency first, from live statistics (time to first token and
time per output token), with an optional p99 time-to-first-token SLO and a small share of exploration so
statistics of the others stay fresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pydantic import Field

from tollway.routing.strategies.base import Ranking, RankInput, ReplayChoice, Strategy, StrategyOptions
from tollway.routing.strategies.preferences import factor_text, preference_factor

if TYPE_CHECKING:
    from tollway.routing.planner import Decision
    from tollway.routing.table import RouteGroupEntry

WARMUP_SAMPLES = 3  # a deployment is measured this many times before its statistics are trusted
SLO_MIN_SAMPLES = 20  # p99 over fewer samples is noise


class FastestOptions(StrategyOptions):
    slo_p99_ttft_ms: float | None = Field(None, gt=0, description="fastest: demote deployments whose p99 TTFT "
                                                                   "is above this")
    explore: float = Field(0.05, ge=0, le=0.5, description="fastest: share of requests sent to another "
                                                            "candidate so stale statistics refresh")


class Fastest(Strategy):
    name = "fastest"
    options = FastestOptions

    def rank(self, inp: RankInput) -> Ranking:
        output = inp.expected_output
        settings = cast(FastestOptions, inp.group.strategy_options)
        slo = settings.slo_p99_ttft_ms
        unmeasured = [d for d in inp.candidates if d.stats.samples < WARMUP_SAMPLES]
        measured = [d for d in inp.candidates if d.stats.samples >= WARMUP_SAMPLES]
        scores = {d.name: f"measuring ({d.stats.samples} of {WARMUP_SAMPLES} samples)" for d in unmeasured}
        keyed = []
        slow = []
        for index, dep in enumerate(measured):
            latency = dep.stats.expected_latency_s(output) or 0.0
            factor = preference_factor(dep, inp)
            p99 = dep.stats.ttft.percentile(99)
            assert p99 is not None  # measured: each of its samples put a TTFT in the window
            scores[dep.name] = f"~{latency:.3f}s expected, p99 TTFT {p99 * 1000:.0f} ms" + factor_text(factor)
            if slo is not None and len(dep.stats.ttft) >= SLO_MIN_SAMPLES and p99 is not None and p99 * 1000 > slo:
                scores[dep.name] += f", demoted: p99 above SLO {slo:g} ms"
                slow.append(dep)
            else:
                keyed.append(((latency * factor, index), dep))
        keyed.sort(key=lambda pair: pair[0])
        ordered = unmeasured + [dep for _, dep in keyed] + slow
        reason = f"fastest: {ordered[0].name} {scores[ordered[0].name].split(',')[0]}"
        if not unmeasured and len(ordered) > 1 and settings.explore and inp.rng.random() < settings.explore:
            pick = inp.rng.randrange(1, len(ordered))
            ordered.insert(0, ordered.pop(pick))
            reason = f"fastest: exploring {ordered[0].name} (refreshing its statistics)"
        return Ranking(ordered, reason, scores)

    def describe(self, group: RouteGroupEntry) -> str:
        settings = cast(FastestOptions, group.strategy_options)
        slo = f", p99 TTFT above {settings.slo_p99_ttft_ms:g} ms demoted" if settings.slo_p99_ttft_ms else ""
        return (f"fastest: lowest expected latency first (each measured {WARMUP_SAMPLES} times first{slo}), "
                f"{settings.explore:.0%} of requests explore another candidate")

    def replay(self, group: RouteGroupEntry, decision: Decision) -> ReplayChoice:
        chosen = super().replay(group, decision)
        unseen = [d.name for d in decision.candidates if d.stats.samples < WARMUP_SAMPLES]
        if not unseen:
            return chosen
        return ReplayChoice(chosen.arms, approximate=f"fastest: the ledger has too few latencies of "
                                                     f"{', '.join(unseen)} to rank it")

"""Strategies: how the candidates that passed the filters are put in order.

Each strategy returns the whole ordered list, not just a winner: the rest is the fallback order the
walker follows when the first fails. Each also returns a score per deployment and a few words of reason,
for the `x-tollway-route` header and `tollway route --explain`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Mapping

from tollway.catalog.cost import try_cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.core.usage import Usage
from tollway.routing.complexity import Complexity
from tollway.routing.features import RequestFeatures
from tollway.routing.table import RoutedDeployment, RouteGroupEntry

WARMUP_SAMPLES = 3  # `fastest` measures a deployment this many times before trusting its statistics
SLO_MIN_SAMPLES = 20  # p99 over fewer samples is noise


@dataclass(slots=True)
class RankInput:
    group: RouteGroupEntry
    candidates: list[RoutedDeployment]      # after the filters, in the group's order
    features: RequestFeatures
    headers: Mapping[str, str]
    pricer: DeploymentPricer | None
    at: datetime | None                     # the moment prices are read at; None: now, read on first use
    rng: random.Random
    complexity: Complexity | None = None

    @property
    def now(self) -> datetime:
        """Only `cheapest` prices candidates, so only it pays for reading the clock."""
        if self.at is None:
            self.at = datetime.now(timezone.utc)
        return self.at

    @property
    def expected_output(self) -> int:
        expected = self.group.options.expected_output_tokens
        return min(expected, self.features.max_tokens) if self.features.max_tokens else expected


@dataclass(slots=True)
class Ranking:
    ordered: list[RoutedDeployment]
    reason: str
    scores: dict[str, str] = field(default_factory=dict)


CONFIGURED_ORDER = "priority: configured order"


def rank(inp: RankInput) -> Ranking:
    return STRATEGIES[inp.group.strategy](inp)


def fixed_order(group: RouteGroupEntry) -> bool:
    """Whether the group's ranking is its candidates in configured order whatever the request is (priority
    with no preference for strong topics): the planner then skips building a RankInput."""
    return group.strategy == "priority" and not group.options.prefer_strong_in


def priority(inp: RankInput) -> Ranking:
    if not inp.group.options.prefer_strong_in:
        return Ranking(inp.candidates, CONFIGURED_ORDER)
    ordered = prefer_strong(inp.candidates, inp)
    moved = " (strong in " + ", ".join(sorted(_topics(inp))) + " first)" if ordered != inp.candidates else ""
    return Ranking(ordered, f"{CONFIGURED_ORDER}{moved}",
                   {d.name: f"position {i + 1}" for i, d in enumerate(ordered)})


def cheapest(inp: RankInput) -> Ranking:
    output = inp.expected_output
    keyed = []
    scores = {}
    for index, dep in enumerate(inp.candidates):
        cost = expected_cost(dep, inp.features.prompt_tokens, output, inp.pricer, inp.now)
        factor = preference_factor(dep, inp)
        latency = dep.stats.expected_latency_s(output)
        ranked_cost = cost * Decimal(str(factor)) if cost is not None else None
        keyed.append(((cost is None, ranked_cost or 0, latency is None, latency or 0.0, index), dep))
        scores[dep.name] = (f"${_money(cost)} expected" if cost is not None else "no price known") + \
            (f", x{factor:g} preference" if factor != 1.0 else "") + (f", ~{latency:.2f}s" if latency is not None else "")
    keyed.sort(key=lambda pair: pair[0])
    ordered = [dep for _, dep in keyed]
    first = ordered[0]
    return Ranking(ordered, f"cheapest: {first.name} {scores[first.name].split(',')[0]}", scores)


def fastest(inp: RankInput) -> Ranking:
    output = inp.expected_output
    settings = inp.group.options
    unmeasured = [d for d in inp.candidates if d.stats.samples < WARMUP_SAMPLES]
    measured = [d for d in inp.candidates if d.stats.samples >= WARMUP_SAMPLES]
    scores = {d.name: f"measuring ({d.stats.samples} of {WARMUP_SAMPLES} samples)" for d in unmeasured}
    keyed = []
    slow = []
    for index, dep in enumerate(measured):
        latency = dep.stats.expected_latency_s(output) or 0.0
        factor = preference_factor(dep, inp)
        p99 = dep.stats.ttft.percentile(99)
        scores[dep.name] = f"~{latency:.3f}s expected, p99 TTFT {p99 * 1000:.0f} ms" + \
            (f", x{factor:g} preference" if factor != 1.0 else "")
        over_slo = (settings.slo_p99_ttft_ms is not None and len(dep.stats.ttft) >= SLO_MIN_SAMPLES
                    and p99 is not None and p99 * 1000 > settings.slo_p99_ttft_ms)
        if over_slo:
            scores[dep.name] += f", demoted: p99 above SLO {settings.slo_p99_ttft_ms:g} ms"
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


def weighted(inp: RankInput) -> Ranking:
    weights = inp.group.weights
    arms = [d for d in inp.candidates if weights.get(d.name, 0) > 0]
    scores = {d.name: f"weight {weights.get(d.name, 0):g}" for d in inp.candidates}
    if not arms:  # every weighted arm was filtered out: the rest, in order
        return Ranking(list(inp.candidates), "weighted: no weighted arm available, configured order", scores)
    sticky, source = inp.features.user, "user"
    if sticky is None:
        source = inp.group.options.sticky_header  # the server hands header names over in lower case
        sticky = inp.headers.get(source.lower())
    point = stable_point(inp.group.name, sticky) if sticky else inp.rng.random()
    total = sum(weights[d.name] for d in arms)
    chosen, running = arms[-1], 0.0
    for dep in arms:
        running += weights[dep.name] / total
        if point < running:
            chosen = dep
            break
    rest = sorted((d for d in inp.candidates if d is not chosen), key=lambda d: -weights.get(d.name, 0))
    how = f"sticky by {source}" if sticky else "random"
    return Ranking([chosen, *rest], f"weighted: {chosen.name} ({how})", scores)


def tiers(inp: RankInput) -> Ranking:
    complexity = inp.complexity
    assert complexity is not None, "the router classifies before ranking a tiers group"
    level = complexity.level
    tier_names = inp.group.tiers.get(level) or inp.group.tiers.get("default") or []
    which = level if level in inp.group.tiers else "default"
    allowed = set(inp.candidates)
    tier = [d for d in tier_names if d in allowed]
    rest = [d for d in inp.candidates if d not in tier]
    scores = {d.name: f"{which} tier" if d in tier else "fallback" for d in inp.candidates}
    if tier:
        ordered = prefer_strong(tier, inp) + rest
        reason = f"tiers: {complexity.level} -> {ordered[0].name}"
    else:
        ordered = rest
        reason = f"tiers: {complexity.level} tier unavailable, fallback {ordered[0].name}" if ordered else "tiers"
    return Ranking(ordered, f"{reason} ({complexity.source})", scores)


STRATEGIES: dict[str, Callable[[RankInput], Ranking]] = {
    "priority": priority, "cheapest": cheapest, "fastest": fastest, "weighted": weighted, "tiers": tiers,
}


def expected_cost(dep: RoutedDeployment, prompt_tokens: int, output_tokens: int, pricer: DeploymentPricer | None,
                  now: datetime) -> Decimal | None:
    """USD this request is expected to cost on `dep` now: its prompt (the share this deployment's cache
    has been serving at the cached rate) and the expected output, at the price in force now."""
    if pricer is None:
        return None
    price = pricer.price(dep, now, prompt_tokens)
    if price is None:
        return None
    cached = int(prompt_tokens * dep.stats.cache_hit_ratio)
    return try_cost_usd(Usage(prompt_tokens=prompt_tokens, cached_tokens=cached, completion_tokens=output_tokens),
                        price)


def preference_factor(dep: RoutedDeployment, inp: RankInput) -> float:
    """Below 1 when the request is about something `dep` is strong in and the group prefers that."""
    prefs = inp.group.options.prefer_strong_in
    if not prefs or not dep.strong_in:
        return 1.0
    factor = 1.0
    for topic in _topics(inp) & dep.strong_in:
        factor *= 1.0 - prefs.get(topic, 0.0)
    return factor


def prefer_strong(deps: list[RoutedDeployment], inp: RankInput) -> list[RoutedDeployment]:
    """For ordered lists (priority, a tier): deployments strong in the request's topic move ahead, stably."""
    if not inp.group.options.prefer_strong_in or len(deps) < 2:
        return deps
    return sorted(deps, key=lambda d: preference_factor(d, inp))


def _topics(inp: RankInput) -> frozenset[str]:
    prefs = inp.group.options.prefer_strong_in
    return inp.features.topics & frozenset(t for t, w in prefs.items() if w > 0) if prefs else frozenset()


def stable_point(group: str, sticky: str) -> float:
    """A caller's fixed point in [0, 1): the same caller lands on the same arm on every replica."""
    digest = hashlib.blake2b(f"{group}\0{sticky}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def _money(value: Decimal) -> str:
    return f"{value:.3g}" if value else "0"

"""`strategy: cheapest`: the lowest expected cost of this request first, at the price in force now."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.catalog.cost import try_cost_usd
from tollway.core.usage import Usage
from tollway.routing.strategies.base import Ranking, RankInput, Strategy, StrategyOptions
from tollway.routing.strategies.preferences import factor_text, preference_factor

if TYPE_CHECKING:
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.routing.table import RoutedDeployment, RouteGroupEntry


class CheapestOptions(StrategyOptions):
    """cheapest has no keys of its own (`expected_output_tokens` applies to every group)."""


class Cheapest(Strategy):
    name = "cheapest"
    options = CheapestOptions

    def rank(self, inp: RankInput) -> Ranking:
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
                factor_text(factor) + (f", ~{latency:.2f}s" if latency is not None else "")
        keyed.sort(key=lambda pair: pair[0])
        ordered = [dep for _, dep in keyed]
        first = ordered[0]
        return Ranking(ordered, f"cheapest: {first.name} {scores[first.name].split(',')[0]}", scores)

    def describe(self, group: RouteGroupEntry) -> str:
        return (f"cheapest: lowest expected cost first (prompt estimate + max_tokens, else "
                f"{group.options.expected_output_tokens} output tokens), ties by expected latency")


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


def _money(value: Decimal) -> str:
    return f"{value:.3g}" if value else "0"

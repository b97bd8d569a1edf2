"""`strategy: priority` (the default): the configured order, the next deployment when one fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollway.routing.strategies.base import Ranking, RankInput, Strategy, StrategyOptions
from tollway.routing.strategies.preferences import prefer_strong, topics

if TYPE_CHECKING:
    from tollway.routing.table import RouteGroupEntry

CONFIGURED_ORDER = "priority: configured order"


class PriorityOptions(StrategyOptions):
    """priority has no keys of its own."""


class Priority(Strategy):
    name = "priority"
    options = PriorityOptions

    def rank(self, inp: RankInput) -> Ranking:
        if not inp.group.options.prefer_strong_in:
            return Ranking(inp.candidates, CONFIGURED_ORDER)
        ordered = prefer_strong(inp.candidates, inp)
        moved = " (strong in " + ", ".join(sorted(topics(inp))) + " first)" if ordered != inp.candidates else ""
        return Ranking(ordered, f"{CONFIGURED_ORDER}{moved}",
                       {d.name: f"position {i + 1}" for i, d in enumerate(ordered)})

    def fixed_order(self, group: RouteGroupEntry) -> str | None:
        return None if group.options.prefer_strong_in else CONFIGURED_ORDER

    def describe(self, group: RouteGroupEntry) -> str:
        prefs = group.options.prefer_strong_in
        strong = "; strong deployments first for " + ", ".join(sorted(prefs)) if prefs else ""
        return f"priority: configured order{strong}"

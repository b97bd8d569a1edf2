"""What a routing strategy is to the rest of tollway, and what it is handed.

A strategy puts the candidates that passed the filters in order. It returns the whole ordered list, not
just a winner: the rest is the fallback order the walker follows when the first fails. It also returns a
score per deployment and a few words of reason, for the `x-tollway-route` header and `tollway route
--explain`. The planner, router, explain and replay ask the strategy object what they need (its options,
whether it grades complexity, what replay can model of it) instead of testing its name, so a new strategy
is one module and a line in registry.py.

This module imports the routing table only for type hints: the config loader reads the strategies'
options models, and the table is built from the config.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, Mapping

from tollway.core.config_base import Strict

if TYPE_CHECKING:
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.routing.complexity import Complexity
    from tollway.routing.features import RequestFeatures
    from tollway.routing.planner import Decision
    from tollway.routing.table import RoutedDeployment, RouteGroupEntry

ONE = Decimal(1)


class StrategyOptions(Strict):
    """A strategy's own keys of a route group. They are written flat in the group's YAML, beside the keys
    every group has; `context["deployments"]` holds the group's deployment names for checks that need them."""


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


@dataclass(frozen=True, slots=True)
class ReplayChoice:
    """What replay counts for one logged request: the deployments it goes to, each with its share of the
    request (1 for one deployment), and why the choice may differ from a live gateway's."""

    arms: tuple[tuple[RoutedDeployment, Decimal], ...]
    reason: str | None = None        # replaces the live reason when replay decides differently (averages)
    approximate: str | None = None


class Strategy:
    """One way of ordering candidates. Subclasses set `name` and `options` and implement `rank`."""

    name: ClassVar[str]
    options: ClassVar[type[StrategyOptions]]
    grades_complexity: ClassVar[bool] = False  # the router grades each request (low/medium/high) before ranking

    def rank(self, inp: RankInput) -> Ranking:
        raise NotImplementedError

    def fixed_order(self, group: RouteGroupEntry) -> str | None:
        """The route reason when the ranking is the candidates in configured order whatever the request is
        (the planner then takes that order without building a RankInput); None when it depends on it."""
        return None

    def describe(self, group: RouteGroupEntry) -> str:
        """How this group ranks, in a line, for `tollway route --explain`."""
        return self.name

    def replay(self, group: RouteGroupEntry, decision: Decision) -> ReplayChoice:
        """Replay's decision from a ranked one: by default the first of the plan, faithfully."""
        return ReplayChoice(((decision.ordered[0], ONE),))

    def replay_caveats(self, group: RouteGroupEntry) -> list[str]:
        """What replay does not model of this group's options, in words for its report."""
        return []

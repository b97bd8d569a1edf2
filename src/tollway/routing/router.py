"""The router: from a route group and a request, the ordered plan of deployments to try, and what it learns.

`plan` runs the pipeline (routing/planner.py: residency, capability and context filters, the group's
strategy, spillover), asks the model classifier when a tiers group uses one, and attaches what the walker
and handler need for the rest of the request: the residency policy (binding every retry, fallback and
hedge), the hedge policy, the classifier's cost, and a shadow copy. `finished` is called once per request
with its ledger row: it releases in-flight counts, feeds each deployment's live statistics from the
attempts, and starts the shadow copy. Background work (scraping self-hosted backends' metrics) starts in
`start`.

The router is given what it uses (the table, the pricer, the upstream client its classifier and shadow
copies call, where shadow rows are written), never the gateway: tests build it from the same parts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Mapping, Protocol

import aiohttp

from tollway.accounting.tickets import Key
from tollway.catalog.cost import try_cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.core.request import ClientRequest
from tollway.core.usage import Usage
from tollway.ledger.schema import LedgerRow
from tollway.routing.attempts import AttemptRecord
from tollway.routing.hedging import HedgePolicy
from tollway.routing.model_classifier import model_complexity
from tollway.routing.planner import Decision, Planner
from tollway.routing.shadow import ShadowCopy, ShadowMirror
from tollway.routing.spillover import MetricsScraper, saturation
from tollway.routing.table import RoutedDeployment, RouteGroupEntry, RouteTable
from tollway.routing.walk import Walk
from tollway.upstream.http_client import HttpClient

log = logging.getLogger("tollway.routing")


@dataclass(slots=True)
class RoutePlan:
    deployments: list[RoutedDeployment]
    reason: str                                  # a few words for the x-tollway-route header
    residency: frozenset[str] | None = None      # the walker refuses anything outside it
    hedge: HedgePolicy | None = None
    overhead: list[AttemptRecord] = field(default_factory=list)  # routing's own upstream calls (classifier)
    shadow: ShadowCopy | None = None
    spill: Callable[[RoutedDeployment], str | None] | None = None  # why a deployment is saturated now, if it is


class Headed(Protocol):
    """What the router reads of the request's exchange: its headers (residency, sticky arms)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


class Router:
    def __init__(self, table: RouteTable, pricer: DeploymentPricer | None, upstream: HttpClient,
                 append_row: Callable[[LedgerRow], None], rng: random.Random | None = None) -> None:
        """`pricer` None: no catalog, so no deployment has a price (cheapest ranks by latency, costs are
        unknown); `append_row` writes a shadow copy's ledger row."""
        self.table = table
        self.upstream = upstream
        self.planner = Planner(pricer, rng or random.Random())
        self.shadow = ShadowMirror(append_row, pricer)
        self.scraper = _scraper(table)

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Start scraping self-hosted backends' metrics for groups with spillover, on `session`."""
        if self.scraper is not None:
            self.scraper.start(session)

    async def stop(self) -> None:
        """Stop scraping; let shadow copies finish briefly (their rows reach the ledger before it closes)."""
        if self.scraper is not None:
            await self.scraper.stop()
        await self.shadow.stop()

    async def plan(self, group: RouteGroupEntry, creq: ClientRequest, key: Key, request: Headed) -> RoutePlan:
        """Raises GatewayError: 503 when the residency policy allows nothing, 400 when no deployment can
        handle what the request needs, 400 for a malformed x-tollway-residency header."""
        decision = self.planner.filter(group, creq, key, request.headers)
        if decision.error is not None:
            raise decision.error
        overhead: list[AttemptRecord] = []
        complexity = None
        spill = _spill_check(group)
        if group.classifier is not None and group.strategy.grades_complexity:
            complexity, record = await model_complexity(self.upstream, group.classifier, decision.features,
                                                        group.options.complexity, decision.policy, self.planner.pricer,
                                                        spill)
            if record is not None:
                overhead.append(record)
        self.planner.rank(decision, request.headers, complexity)
        shadow = None
        if decision.shadow is not None and group.options.shadow is not None:
            shadow = ShadowCopy(decision.shadow, creq, creq.endpoint, group.options.shadow.max_in_flight, spill)
        return RoutePlan(decision.ordered, decision.reason, decision.policy.allowed, self._hedge(group, creq, decision),
                         overhead, shadow, spill)

    def finished(self, walk: Walk | None, row: LedgerRow) -> None:
        """Once per request, after its ledger row is built: release, learn, mirror. Never raises."""
        if walk is None:
            return
        walk.release()
        try:
            learn(walk, row, asyncio.get_running_loop().time())
            plan = walk.plan
            if plan is not None and plan.shadow is not None and row.status == "ok":
                self.shadow.launch(self.upstream, plan.shadow, row)
        except Exception:  # the request is already answered and accounted: log, never fail it here
            log.exception("routing bookkeeping failed for request %s", row.id)

    def _hedge(self, group: RouteGroupEntry, creq: ClientRequest, decision: Decision) -> HedgePolicy | None:
        settings = group.options.hedge
        if settings is None or group.hedge_budget is None or len(decision.ordered) < 2:
            return None
        group.hedge_budget.earn()
        features = decision.features
        pricer = self.planner.pricer
        arrived = datetime.now(timezone.utc)

        def estimate_loser(dep: RoutedDeployment) -> tuple[int, Decimal | None]:
            prompt_tokens = features.prompt_tokens
            price = pricer.price(dep, arrived, prompt_tokens) if pricer is not None else None
            return prompt_tokens, try_cost_usd(Usage(prompt_tokens=prompt_tokens, source="estimated"), price)

        return HedgePolicy(settings, group.hedge_budget, creq.stream, estimate_loser)


def learn(walk: Walk, row: LedgerRow, now: float) -> None:
    """Feed live statistics from a finished request's attempts.

    The answering attempt gives a time to first token (a stream's first event) or a whole reply time, and
    for a completed stream the pace of the rest; a timeout counts as a (censored) first-token time, so a
    deployment that stalls ranks as slow, not as unknown."""
    for attempt in walk.attempts:
        stats = attempt.deployment.stats
        seconds = attempt.latency_ms / 1000
        if attempt.outcome == "ok":
            if row.streamed:
                stats.observe_ttft(seconds)
                if row.status == "ok" and row.completion_tokens > 1 and attempt.ended_at:
                    stats.observe_tpot(max(0.0, now - attempt.ended_at) / (row.completion_tokens - 1))
            else:
                stats.observe_reply(seconds, row.completion_tokens)
            if row.usage_source == "reported":
                stats.observe_cache(row.prompt_tokens, row.cached_tokens)
        elif attempt.kind == "timeout":
            stats.observe_ttft(seconds)


def _spill_check(group: RouteGroupEntry) -> Callable[[RoutedDeployment], str | None] | None:
    """The walker, the classifier call and shadow copies check saturation right before each attempt: requests
    plan concurrently, and only the check next to the attempt (with no await in between) sees the in-flight
    count that attempt adds to (routing/spillover.py try_acquire)."""
    settings = group.options.spillover
    if settings is None:
        return None
    return lambda dep: saturation(dep, settings, settings.scrape_interval_s)


def _scraper(table: RouteTable) -> MetricsScraper | None:
    groups = [g for g in table.groups.values() if g.settings is not None and g.settings.spillover is not None]
    if not groups:
        return None
    deployments = {d.name: d for g in groups for d in g.deployments if d.self_hosted}
    interval = min(g.options.spillover.scrape_interval_s for g in groups)  # type: ignore[union-attr]
    return MetricsScraper(list(deployments.values()), interval)

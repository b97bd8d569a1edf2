"""The replay engine: which deployment a candidate config would have chosen for each logged request,
and what that would have cost, without calling any model.

Each request goes through the gateway's own routing pipeline (routing/planner.py) with the candidate's
route table, the price in force at the request's own time, and the request's recorded needs
(replay_features.py). What a live gateway decides from things a ledger cannot replay, each strategy decides
for itself (its `replay`: routing/strategies/): weighted counts the weight-averaged cost over the arms that
pass the filters; fastest ranks by live statistics learned from the ledger's own latencies as the rows go
by, in time order, and marks rows approximate while a candidate is unmeasured; tiers grades from prompt
size and tools only (approximate); cheapest and priority decide as live. Exploration is off: replay follows
each strategy's expected path. Spillover, hedging and shadow copies depend on live load or are extra
traffic: not replayed.

The candidate's cost uses the row's real token counts (prompt incl. cached and cache writes, completion)
at the chosen deployment's price, exactly (Decimal); the current cost is the ledger's cost_usd.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from pathlib import Path

from tollway.accounting.tickets import Key
from tollway.catalog import Catalog
from tollway.catalog.cost import try_cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import SELF_HOSTED_KINDS, Config
from tollway.core.usage import Usage
from tollway.plan.replay_features import replay_request
from tollway.plan.replay_rows import LoggedRequest
from tollway.plan.scenario import ScenarioError
from tollway.routing.planner import Decision, Planner
from tollway.routing.table import RoutedDeployment, RouteGroupEntry, RouteTable

EXACT = Context(prec=60)
UNSERVEABLE_REASONS = ("capability", "context", "residency", "model")
_ERROR_REASONS = {"residency_unavailable": "residency", "unsupported_capability": "capability"}


@dataclass(frozen=True, slots=True)
class Arm:
    """A deployment the candidate sends the request to, with its share (1 unless weighted)."""

    deployment: str
    share: Decimal
    cost_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class RowDecision:
    """What the candidate would have done with one logged request."""

    request: LoggedRequest
    group: str                      # the candidate's route group, or the requested model it does not serve
    arms: tuple[Arm, ...]           # empty when unserveable
    cost_usd: Decimal | None        # None when unserveable, or when a chosen deployment has no price then
    unserveable: str | None         # one of UNSERVEABLE_REASONS
    detail: str                     # the route reason, or why it could not be served
    approximate: str | None = None  # why this decision may differ from a live gateway's


class ExpectedPath(random.Random):
    """A random source that always draws the top of the range: no exploration, no shadow sampling.

    Replay wants each strategy's expected decision, not one sample of it; weighted arms are averaged by
    its own `replay`."""

    def random(self) -> float:
        return 1.0


class Replayer:
    """Decides logged requests under a candidate config. Feed every row to `learn` after `decide`, in time
    order, so latency-ranked groups see what the gateway had seen by then."""

    def __init__(self, config: Config, catalog: Catalog, config_path: Path | str = "the candidate config") -> None:
        self.table = RouteTable(config, catalog, resolve_secrets=False)
        self.pricer = DeploymentPricer(catalog)
        self.planner = Planner(self.pricer, ExpectedPath())
        check_priceable(self.table, catalog, config_path)

    def decide(self, request: LoggedRequest) -> RowDecision:
        group = self.table.group_for(request.requested_model)
        if group is None:
            return RowDecision(request, request.requested_model, (), None, "model",
                               f"the candidate serves no model named {request.requested_model!r}")
        creq = replay_request(request)
        residency = request.features.residency
        key = Key(id=f"{request.key_id or 'request'} (logged)", residency=residency) if residency is not None else None
        decision = self.planner.filter(group, creq, key, {})
        if decision.error is not None:
            reason = _ERROR_REASONS.get(decision.error.code or "", "capability")
            return RowDecision(request, group.name, (), None, reason, decision.error.message)
        too_big = _context_overflow(decision)
        if too_big is not None:
            return RowDecision(request, group.name, (), None, "context", too_big)
        self.planner.rank(decision, {}, now=request.ts)
        choice = group.strategy.replay(group, decision)
        arms = [Arm(dep.name, share, self.cost_on(dep, request)) for dep, share in choice.arms]
        costs = [arm.cost_usd for arm in arms]
        cost = None if any(c is None for c in costs) else _weighted_sum(arms)
        return RowDecision(request, group.name, tuple(arms), cost, None, choice.reason or decision.reason,
                           choice.approximate)

    def learn(self, request: LoggedRequest) -> None:
        """Live statistics from an answered row, as the gateway's Router.finished learns them."""
        dep = self.table.deployments.get(request.deployment)
        if dep is None or request.status != "ok":
            return
        stats = dep.stats
        if request.streamed and request.ttft_ms is not None:
            stats.observe_ttft(request.ttft_ms / 1000)
            if request.latency_ms is not None and request.completion_tokens > 1:
                decode_s = max(0.0, request.latency_ms - request.ttft_ms) / 1000
                stats.observe_tpot(decode_s / (request.completion_tokens - 1))
        elif request.latency_ms is not None:
            stats.observe_reply(request.latency_ms / 1000, request.completion_tokens)
        if request.usage_source == "reported":
            stats.observe_cache(request.prompt_tokens, request.cached_tokens)

    def cost_on(self, dep: RoutedDeployment, request: LoggedRequest) -> Decimal | None:
        """The row's real tokens at `dep`'s price in force at the row's time; None when a rate is unknown."""
        price = self.pricer.price(dep, request.ts, request.prompt_tokens)
        usage = Usage(prompt_tokens=request.prompt_tokens, cached_tokens=request.cached_tokens,
                      cache_write_tokens=request.cache_write_tokens, completion_tokens=request.completion_tokens)
        return try_cost_usd(usage, price)


def check_priceable(table: RouteTable, catalog: Catalog, config_path: Path | str) -> None:
    """Every deployment a route group can choose must have a price source; raises ScenarioError naming it."""
    used = {d.name: d for group in table.groups.values() for d in group.deployments}
    for name, dep in used.items():
        if dep.config.price is not None or dep.kind in SELF_HOSTED_KINDS:
            continue
        if catalog.entry(dep.kind, dep.upstream_model) is None:
            raise ScenarioError(f"{config_path}: deployments.{name}.model: {dep.upstream_model!r} is not in the "
                                f"catalog for provider kind {dep.kind!r} and the deployment has no `price:`, so "
                                f"replay cannot cost it; add `price: {{input: ..., output: ...}}` to the deployment "
                                f"or a `catalog:` entry")


def _context_overflow(decision: Decision) -> str | None:
    """The planner keeps the largest windows when nothing fits (the upstream decides live); replay knows the
    real prompt size, so a request that fits no candidate's window is one the candidate could not serve."""
    features = decision.features
    needed = features.prompt_tokens + (features.max_tokens or 1)
    largest = max(d.context_window for d in decision.candidates)
    if needed <= largest:
        return None
    return (f"{features.prompt_tokens} prompt tokens + {features.max_tokens or 1} max_tokens = {needed} exceed the "
            f"largest context window ({largest}) of {', '.join(d.name for d in decision.candidates)}")


def _weighted_sum(arms: list[Arm]) -> Decimal:
    total = Decimal(0)
    for arm in arms:
        total = EXACT.add(total, EXACT.multiply(arm.share, arm.cost_usd))  # type: ignore[arg-type]
    return total


def ignored_options(group: RouteGroupEntry) -> list[str]:
    """What a group's config asks for that replay does not model, in words for the report."""
    options = group.options if group.settings is not None else None
    if options is None:
        return []
    notes = []
    if options.spillover is not None:
        notes.append("spillover not replayed (it depends on live backend load)")
    if options.hedge is not None:
        notes.append("hedging not replayed (a hedge loser's tokens are extra cost the candidate would add)")
    if options.shadow is not None:
        notes.append("shadow copies not replayed (they are extra traffic, not the client's answer)")
    if options.prefer_strong_in:
        notes.append("prefer_strong_in not applied (the ledger keeps no text to recognise topics in)")
    if group.strategy.grades_complexity and options.complexity.classifier == "model":
        notes.append("the grading model is not asked; the heuristic grades instead")
    return notes + group.strategy.replay_caveats(group)


def day_of(moment: datetime) -> str:
    """The UTC day a request arrived, e.g. 2026-10-05."""
    return moment.date().isoformat()

"""The routing pipeline, without I/O: candidates -> residency -> capabilities -> context -> strategy -> spillover.

The gateway's Router and `tollway route --explain` run exactly this code, so what --explain prints is
what the gateway does. Every removal is recorded with its filter and reason; the cost of that is a list
append per removed deployment. What depends only on the config and the caller's restrictions (the
residency stage, per key and header) is worked out once and remembered on the route group; a priority
group's fixed order is taken as is. What changes per request (capabilities, the prompt's size, live
statistics, saturation) is read per request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from tollway.accounting.tickets import Key
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.core.errors import GatewayError
from tollway.core.request import ClientRequest
from tollway.routing.complexity import Complexity, heuristic_complexity
from tollway.routing.features import RequestFeatures, request_features
from tollway.routing.residency import (
    RESIDENCY_HEADER,
    UNRESTRICTED,
    ResidencyPolicy,
    residency_policy,
    residency_unavailable,
)
from tollway.routing.spillover import saturation
from tollway.routing.strategies.base import RankInput
from tollway.routing.table import RoutedDeployment, RouteGroupEntry

RESIDENCY_ANSWERS_KEPT = 1024  # per route group: (key, key restriction, header) combinations remembered
CAPABILITY_WORDS = {"vision": "image input", "tools": "tool calls", "json": "JSON output (response_format)"}


@dataclass(slots=True)
class Removal:
    deployment: RoutedDeployment
    filter: str    # residency | capability | context
    reason: str


@dataclass(slots=True)
class Decision:
    """Everything routing decided for one request, and why."""

    group: RouteGroupEntry
    model: str
    features: RequestFeatures
    policy: ResidencyPolicy
    candidates: list[RoutedDeployment]                 # after the filters
    removed: list[Removal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ordered: list[RoutedDeployment] = field(default_factory=list)
    scores: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    complexity: Complexity | None = None
    spilled: dict[str, str] = field(default_factory=dict)  # deployment -> why it is saturated
    shadow: RoutedDeployment | None = None
    error: GatewayError | None = None


class Planner:
    def __init__(self, pricer: DeploymentPricer | None, rng: random.Random | None = None) -> None:
        self.pricer = pricer
        self.rng = rng or random.Random()

    def filter(self, group: RouteGroupEntry, creq: ClientRequest, key: Key | None,
               headers: Mapping[str, str]) -> Decision:
        """Residency, then capabilities, then the context window. Sets `error` when nothing may serve.

        Raises GatewayError(400) for a malformed residency header."""
        policy, allowed, removed = residency_stage(group, key, headers.get(RESIDENCY_HEADER))
        decision = Decision(group, creq.model, request_features(creq), policy, [], list(removed))
        if not allowed:
            outside = [f"{r.deployment.name} ({r.deployment.jurisdiction})" for r in decision.removed]
            decision.error = residency_unavailable(creq.model, policy, outside)
            return decision
        capable = self._capabilities(decision, allowed)
        if not capable:
            decision.error = _incapable(decision)
            return decision
        decision.candidates = self._context(decision, capable)
        return decision

    def classify(self, decision: Decision) -> Complexity:
        return heuristic_complexity(decision.features, decision.group.options.complexity)

    def rank(self, decision: Decision, headers: Mapping[str, str], complexity: Complexity | None = None,
             now: datetime | None = None) -> Decision:
        """Order the candidates by the group's strategy, then move saturated self-hosted ones back."""
        group = decision.group
        if group.fixed_order is not None:  # what the strategy returns for it, without the RankInput
            decision.ordered, decision.reason = decision.candidates, group.fixed_order
        else:
            if group.strategy.grades_complexity:
                decision.complexity = complexity or self.classify(decision)
            inp = RankInput(group, decision.candidates, decision.features, headers, self.pricer, now, self.rng,
                            decision.complexity)
            ranking = group.strategy.rank(inp)
            decision.ordered, decision.reason, decision.scores = ranking.ordered, ranking.reason, ranking.scores
        spill = group.options.spillover
        if spill is not None:
            self._spill(decision, spill)
        shadow = group.options.shadow
        if shadow is not None and group.shadow_target is not None and self.rng.random() < shadow.sample:
            target = group.shadow_target
            if decision.policy.permits(target.jurisdiction):
                decision.shadow = target
            else:
                decision.notes.append(f"shadow copy to {target.name} skipped: {target.jurisdiction} is outside "
                                      f"the residency policy")
        return decision

    def _capabilities(self, decision: Decision, deployments: list[RoutedDeployment]) -> list[RoutedDeployment]:
        needs = decision.features.needs
        if not needs:
            return deployments
        kept = []
        for dep in deployments:
            if not dep.capabilities_known:
                kept.append(dep)
                decision.notes.append(f"{dep.name}: capabilities unknown (not in the config or the catalog), "
                                      f"kept for {', '.join(sorted(needs))}")
                continue
            missing = needs - dep.capabilities
            if missing:
                decision.removed.append(Removal(dep, "capability", "cannot handle " +
                                                ", ".join(CAPABILITY_WORDS[m] for m in sorted(missing))))
            else:
                kept.append(dep)
        return kept

    def _context(self, decision: Decision, deployments: list[RoutedDeployment]) -> list[RoutedDeployment]:
        """Drop deployments the prompt plus max_tokens cannot fit. The prompt size is an estimate, so when
        nothing fits, the largest windows are kept and the upstream decides (the walker handles its refusal)."""
        features = decision.features
        if features.prompt_tokens_at_most() + (features.max_tokens or 1) <= min([d.context_window for d in deployments]):
            return deployments  # the common case, decided without reading the text
        needed = features.prompt_tokens + (features.max_tokens or 1)
        fitting = [d for d in deployments if d.context_window >= needed]
        if not fitting:
            largest = max(d.context_window for d in deployments)
            decision.notes.append(f"~{needed} tokens (prompt estimate + max_tokens) fit no window; kept the "
                                  f"largest ({largest}) and let the upstream decide")
            fitting = [d for d in deployments if d.context_window == largest]
        for dep in deployments:
            if dep not in fitting:
                decision.removed.append(Removal(dep, "context", f"~{features.prompt_tokens} prompt tokens + "
                                                                f"{features.max_tokens or 1} max_tokens > window {dep.context_window}"))
        return fitting

    def _spill(self, decision: Decision, settings) -> None:
        kept, spilled = [], []
        for dep in decision.ordered:
            why = saturation(dep, settings, settings.scrape_interval_s)
            if why is None:
                kept.append(dep)
            else:
                spilled.append(dep)
                decision.spilled[dep.name] = why
        if spilled and kept:
            decision.ordered = kept + spilled
            first = spilled[0]
            decision.reason += f"; spill: {first.name} saturated ({decision.spilled[first.name]}) -> {kept[0].name}"


def residency_stage(group: RouteGroupEntry, key: Key | None, header: str | None
                    ) -> tuple[ResidencyPolicy, list[RoutedDeployment], tuple[Removal, ...]]:
    """The policy, the deployments it allows (a new list) and the ones it removed, with why.

    The answer depends only on the group, the key's id and restriction and the header's text, so it is
    worked out once per combination and kept on the group (bounded); a request then copies a list.
    Raises GatewayError(400) for a malformed header (never cached)."""
    if header is None and group.options.residency is None and (key is None or key.residency is None):
        return UNRESTRICTED, list(group.deployments), ()
    cache = group.residency_answers
    cache_key = (key.id if key else None, key.residency if key else None, header)
    answer = cache.get(cache_key)
    if answer is None:
        policy = residency_policy(key, group.name, group.options.residency, header)
        kept: list[RoutedDeployment] = []
        removals: list[Removal] = []
        for dep in group.deployments:
            if policy.permits(dep.jurisdiction):
                kept.append(dep)
            else:
                removals.append(Removal(dep, "residency", f"jurisdiction {dep.jurisdiction} is not in "
                                                         f"{', '.join(sorted(policy.allowed or ()))}"))
        if len(cache) >= RESIDENCY_ANSWERS_KEPT:
            cache.clear()  # more combinations than a deployment sees: start over rather than grow
        answer = cache[cache_key] = (policy, kept, tuple(removals))
    policy, kept, removed = answer
    return policy, list(kept), removed


def _incapable(decision: Decision) -> GatewayError:
    needs = ", ".join(CAPABILITY_WORDS[n] for n in sorted(decision.features.needs))
    which = "; ".join(f"{r.deployment.name} {r.reason}" for r in decision.removed if r.filter == "capability")
    return GatewayError(400, f"No deployment of model '{decision.model}' supports {needs}: {which}. Use a model "
                             f"that does, or declare the deployment's `capabilities` in the config if it can.",
                        "invalid_request_error", "unsupported_capability")

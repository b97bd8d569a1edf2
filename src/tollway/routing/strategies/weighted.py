"""`strategy: weighted`: each request to one arm at random by weight (an A/B split), a caller kept on one
arm by its `user` or a sticky header; the other deployments follow as fallbacks, heaviest first."""

from __future__ import annotations

import hashlib
from decimal import Context, Decimal
from typing import TYPE_CHECKING, cast

from pydantic import Field, ValidationInfo, model_validator

from tollway.routing.strategies.base import Ranking, RankInput, ReplayChoice, Strategy, StrategyOptions

if TYPE_CHECKING:
    from tollway.routing.planner import Decision
    from tollway.routing.table import RouteGroupEntry

EXACT = Context(prec=60)  # arm shares for replay: exact enough that the shares' costs sum to the cent


class WeightedOptions(StrategyOptions):
    weights: dict[str, float] = Field(default_factory=dict, description="weighted: deployment -> share")
    sticky_header: str = Field("x-tollway-sticky", description="weighted: keeps a caller on one arm when the "
                                                               "body has no `user`")

    @model_validator(mode="after")
    def _arms(self, info: ValidationInfo) -> "WeightedOptions":
        if not self.weights:
            raise ValueError("strategy: weighted needs `weights`, e.g. {arm-a: 90, arm-b: 10}")
        members = (info.context or {}).get("deployments")
        if members is not None:
            stray = sorted(set(self.weights) - set(members))
            if stray:
                raise ValueError(f"weights: {stray} are not deployments of this group ({', '.join(sorted(members))})")
        if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
            raise ValueError("weights must not be negative and at least one must be above 0")
        return self


class Weighted(Strategy):
    name = "weighted"
    options = WeightedOptions

    def rank(self, inp: RankInput) -> Ranking:
        settings = cast(WeightedOptions, inp.group.strategy_options)
        weights = settings.weights
        arms = [d for d in inp.candidates if weights.get(d.name, 0) > 0]
        scores = {d.name: f"weight {weights.get(d.name, 0):g}" for d in inp.candidates}
        if not arms:  # every weighted arm was filtered out: the rest, in order
            return Ranking(list(inp.candidates), "weighted: no weighted arm available, configured order", scores)
        sticky, source = inp.features.user, "user"
        if sticky is None:
            source = settings.sticky_header  # the server hands header names over in lower case
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

    def describe(self, group: RouteGroupEntry) -> str:
        settings = cast(WeightedOptions, group.strategy_options)
        arms = ", ".join(f"{name} {weight:g}" for name, weight in settings.weights.items())
        return f"weighted: {arms}; a caller stays on one arm by `user`, else the {settings.sticky_header} header"

    def replay(self, group: RouteGroupEntry, decision: Decision) -> ReplayChoice:
        """The expected cost is the weight-averaged cost over the arms that passed the filters."""
        weights = cast(WeightedOptions, group.strategy_options).weights
        arms = [d for d in decision.candidates if weights.get(d.name, 0) > 0]
        if not arms:
            return super().replay(group, decision)
        exact = {d.name: Decimal(repr(weights[d.name])) for d in arms}
        total = sum(exact.values(), Decimal(0))
        shares = tuple((d, EXACT.divide(exact[d.name], total)) for d in arms)
        if len(shares) == 1:
            return ReplayChoice(shares)
        spread = ", ".join(f"{d.name} {_percent(share)}" for d, share in shares)
        return ReplayChoice(shares, f"weighted: expected over {spread}")

    def replay_caveats(self, group: RouteGroupEntry) -> list[str]:
        return ["weighted: expected cost over the arms (sticky callers not modelled)"]


def stable_point(group: str, sticky: str) -> float:
    """A caller's fixed point in [0, 1): the same caller lands on the same arm on every replica."""
    digest = hashlib.blake2b(f"{group}\0{sticky}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def _percent(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.01')).normalize():f}%"

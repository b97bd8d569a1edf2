"""`strategy: tiers`: each request graded low, medium or high (routing/complexity.py, or a grading model),
and sent to its tier's deployments first; easy requests to a cheap model, hard ones to a strong one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from pydantic import Field, ValidationInfo, model_validator

from tollway.routing.strategies.base import Ranking, RankInput, ReplayChoice, Strategy, StrategyOptions
from tollway.routing.strategies.preferences import prefer_strong

if TYPE_CHECKING:
    from tollway.routing.planner import Decision
    from tollway.routing.table import RouteGroupEntry

TierName = Literal["low", "medium", "high", "default"]


class TiersOptions(StrategyOptions):
    tiers: dict[TierName, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tiers_name_members(self, info: ValidationInfo) -> "TiersOptions":
        if not self.tiers:
            raise ValueError("strategy: tiers needs `tiers`, e.g. {low: [cheap], high: [strong], default: [mid]}")
        members = (info.context or {}).get("deployments")
        for level, names in self.tiers.items():
            stray = [n for n in names if n not in members] if members is not None else []
            if stray or not names:
                raise ValueError(f"tiers.{level}: {stray or 'an empty list'} must name deployments of this group "
                                 f"({', '.join(members or ())})")
        return self


class Tiers(Strategy):
    name = "tiers"
    options = TiersOptions
    grades_complexity = True

    def rank(self, inp: RankInput) -> Ranking:
        complexity = inp.complexity
        assert complexity is not None, "the planner grades a request before ranking it by tiers"
        tiers = cast(TiersOptions, inp.group.strategy_options).tiers
        level = complexity.level
        tier_names = tiers.get(level) or tiers.get("default") or []  # type: ignore[call-overload]
        which = level if level in tiers else "default"
        by_name = {d.name: d for d in inp.candidates}
        tier = [by_name[name] for name in tier_names if name in by_name]
        rest = [d for d in inp.candidates if d not in tier]
        scores = {d.name: f"{which} tier" if d in tier else "fallback" for d in inp.candidates}
        if tier:
            ordered = prefer_strong(tier, inp) + rest
            reason = f"tiers: {level} -> {ordered[0].name}"
        else:
            ordered = rest
            reason = f"tiers: {level} tier unavailable, fallback {ordered[0].name}" if ordered else "tiers"
        return Ranking(ordered, f"{reason} ({complexity.source})", scores)

    def describe(self, group: RouteGroupEntry) -> str:
        tiers = cast(TiersOptions, group.strategy_options).tiers
        complexity = group.options.complexity
        grader = (f"the model {complexity.deployment}" if complexity.classifier == "model" else
                  f"the heuristic (medium from {complexity.medium_at:g}, high from {complexity.high_at:g})")
        levels = "; ".join(f"{level} -> {', '.join(names)}" for level, names in tiers.items())
        return f"tiers: {levels}; graded by {grader}"

    def replay(self, group: RouteGroupEntry, decision: Decision) -> ReplayChoice:
        chosen = super().replay(group, decision)
        return ReplayChoice(chosen.arms, approximate="tiers: graded from prompt size and tools only (the ledger "
                                                     "keeps no text)")

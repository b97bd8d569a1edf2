"""`prefer_strong_in`: a request about something a deployment is strong in favours that deployment.

Every strategy may honour the group's preference: ordered ones (priority, a tier) move strong deployments
ahead stably, scored ones (cheapest, fastest) multiply the score by the preference factor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollway.routing.strategies.base import RankInput
    from tollway.routing.table import RoutedDeployment


def preference_factor(dep: RoutedDeployment, inp: RankInput) -> float:
    """Below 1 when the request is about something `dep` is strong in and the group prefers that."""
    prefs = inp.group.options.prefer_strong_in
    if not prefs or not dep.strong_in:
        return 1.0
    factor = 1.0
    for topic in topics(inp) & dep.strong_in:
        factor *= 1.0 - prefs.get(topic, 0.0)
    return factor


def prefer_strong(deps: list[RoutedDeployment], inp: RankInput) -> list[RoutedDeployment]:
    """For ordered lists (priority, a tier): deployments strong in the request's topic move ahead, stably."""
    if not inp.group.options.prefer_strong_in or len(deps) < 2:
        return deps
    return sorted(deps, key=lambda d: preference_factor(d, inp))


def topics(inp: RankInput) -> frozenset[str]:
    """The request's topics the group gives a preference to."""
    prefs = inp.group.options.prefer_strong_in
    return inp.features.topics & frozenset(t for t, w in prefs.items() if w > 0) if prefs else frozenset()


def factor_text(factor: float) -> str:
    """The score suffix for a preference that changed a deployment's score."""
    return f", x{factor:g} preference" if factor != 1.0 else ""

"""The plan in the order pacing charged it: reserve charges a request to the first paced deployment with
room, so that deployment must be the one the walk tries first; the others keep the router's order."""

from __future__ import annotations


def paced_first(paced: str, deployments: list) -> list:
    """`deployments` with the one pacing charged the request to first (others keep their order)."""
    if not paced or not deployments or deployments[0].name == paced:  # the usual case: already first
        return deployments
    return sorted(deployments, key=lambda dep: dep.name != paced)

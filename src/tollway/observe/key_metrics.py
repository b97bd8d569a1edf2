"""The provider keys' series on /metrics: each key's breaker state, how often it was held off, and how
many attempts went out with it (the spread of round-robin).

A key is labelled by its fingerprint (routing/key_ring.py), never by anything that gives the secret back.
Breakers and turns are per process, so under `serve --workers N` every series carries the `worker` label,
like the deployments' breakers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tollway.routing.breaker import CLOSED, HALF_OPEN, OPEN
from tollway.routing.key_ring import key_states

if TYPE_CHECKING:
    from tollway.routing.table import RoutedDeployment

STATES = (CLOSED, OPEN, HALF_OPEN)
KeyState = list  # [provider, key label, breaker state, times opened, attempts sent]


def table_key_states(deployments: Mapping[str, RoutedDeployment]) -> list[KeyState]:
    """Every key of every provider the deployments use, once per provider."""
    rings = {dep.keys.provider: dep.keys for dep in deployments.values() if dep.keys is not None}
    return key_states(rings)


def key_families(workers: Iterable[tuple[str | None, list[KeyState]]]) -> Iterator[Metric]:
    """The three key series from (worker or None, that process's key states)."""
    readings = [(worker, states) for worker, states in workers if states]
    if not readings:
        return
    extra = ["worker"] if readings[0][0] is not None else []
    state = GaugeMetricFamily("tollway_upstream_key_state", "1 for the provider key's current breaker state.",
                              labels=["provider", "key", "state", *extra])
    opened = CounterMetricFamily("tollway_upstream_key_opened", "Times the provider key was held off (refused: "
                                 "revoked or out of funds).", labels=["provider", "key", *extra])
    sent = CounterMetricFamily("tollway_upstream_key_attempts", "Upstream attempts sent with the provider key.",
                               labels=["provider", "key", *extra])
    for worker, states in readings:
        tail = [worker] if worker is not None else []
        for provider, label, current, opened_count, sent_count in states:
            for name in STATES:
                state.add_metric([provider, label, name, *tail], 1 if name == current else 0)
            opened.add_metric([provider, label, *tail], opened_count)
            sent.add_metric([provider, label, *tail], sent_count)
    yield state
    yield opened
    yield sent

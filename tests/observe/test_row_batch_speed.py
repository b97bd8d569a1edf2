"""Folding a drain's rows at once (observe/row_batch.py) gives exactly the figures of folding them one by one.

The batch path exists for speed: rows are summed per shape, and each figure is updated once per shape.
These tests feed the same varied traffic (errors, fallbacks, hedges, shadows, unpriced rows, several
keys and models) both ways and compare every figure the observer keeps.
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal, InvalidOperation

import pytest

from tollway.ledger.schema import LedgerRow
from tollway.observe.anomalies import SpendWatch
from tollway.observe.drift import DriftWatch
from tollway.observe.live_figures import LiveFigures
from tollway.observe.metrics import GatewayMetrics
from tollway.observe.row_batch import RowBatch
from tollway.observe.settings import AlertSettings, DriftSettings, MetricsSettings

NOW = 1_795_000_000.0
PROVIDERS = {"a": "pa", "b": "pb", "": ""}
WALKS = [[("ok", "self")], [("failover", "a"), ("ok", "self")], [("skipped", "a"), ("ok", "self")],
         [("ok", "self"), ("cancelled", "b")], [("failover", "a"), ("retry", "b")], []]


def _traffic(count: int, seed: int = 7) -> list[LedgerRow]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        status = rng.choice(["ok"] * 8 + ["error", "client_error", "stream_error", "cancelled"])
        dep = rng.choice(["a", "b"]) if status == "ok" else rng.choice(["a", "b", ""])
        attempts = [{"deployment": dep if d == "self" else d, "provider": PROVIDERS[dep if d == "self" else d],
                     "outcome": outcome, "kind": "server_error" if outcome in ("failover", "retry") else "",
                     "status": 500} for outcome, d in rng.choice(WALKS)]
        cost = Decimal(rng.randint(0, 10 ** 6)) / Decimal(10 ** rng.randint(6, 12)) if rng.random() < 0.9 else 0
        rows.append(LedgerRow(
            id=f"r{n}", ts="2026-11-23T10:00:00+00:00", endpoint="chat", key_id=rng.choice(["k1", "k2", "k3", ""]),
            requested_model="m", status=status, http_status=200 if status == "ok" else 502,
            route_group=rng.choice(["g", "h"]), deployment=dep, provider=PROVIDERS[dep],
            upstream_model=rng.choice(["um", ""]), attempts=attempts, prompt_tokens=rng.randint(0, 5000),
            cached_tokens=rng.randint(0, 10), cache_write_tokens=rng.randint(0, 3),
            completion_tokens=rng.choice([rng.randint(0, 100), rng.randint(100, 2000)]),
            reasoning_tokens=rng.randint(0, 5), usage_source="reported", cost_usd=str(cost),
            ttft_ms=rng.choice([None, rng.random() * 3000]), latency_ms=rng.choice([None, rng.random() * 9000]),
            shadow=int(rng.random() < 0.05), priced=int(rng.random() < 0.95),
            system_fingerprint=rng.choice(["fp1"] * 9 + ["fp2"])))
    return rows


class Figures:
    """Every consumer of a drain, fed one way or the other."""

    def __init__(self) -> None:
        self.metrics = GatewayMetrics(MetricsSettings(key_labels=True, max_keys=2))
        self.live = LiveFigures(24, 50)
        self.spend = SpendWatch(AlertSettings.model_validate(
            {"window_s": 60, "thresholds": [{"metric": "tokens", "above": 100_000, "window_s": 30, "scope": "key"}]}))
        self.drift = DriftWatch(DriftSettings(recent_requests=5, reference_requests=20, min_reference=10,
                                              fingerprint_samples=3))
        self.alerts: list[str] = []

    def row_by_row(self, rows: list[LedgerRow], now: float) -> None:
        for row in rows:
            self.metrics.add(row)
            self.live.add(row, now)
            self.spend.observe(row, now)
            self.alerts += [a.title for a in self.drift.observe(row, row.system_fingerprint)]
        self.alerts += [a.title for a in self.spend.evaluate(now)]

    def batched(self, rows: list[LedgerRow], now: float) -> None:
        batch = RowBatch.of(rows)
        self.metrics.add_batch(batch)
        self.live.add_batch(batch, now)
        self.spend.observe_batch(batch, now)
        for row, cost in batch.answers:
            self.alerts += [a.title for a in self.drift.observe_answer(row, cost, row.system_fingerprint)]
        self.alerts += [a.title for a in self.spend.evaluate(now)]

    def state(self) -> dict:
        families = {family.name: sorted((s.name, tuple(sorted(s.labels.items())), repr(s.value))
                                        for s in family.samples)
                    for family in self.metrics.collect() if not family.name.startswith("tollway_breaker")}
        windows = {series: [list(map(str, bucket)) for bucket in window._buckets]
                   for series, window in self.spend._windows.items()}
        return {"metrics": families, "live": self.live.snapshot(NOW + 3600), "alerts": self.alerts,
                "windows": windows, "history": self.spend.history._hours}


def test_a_batch_folds_to_the_same_figures_as_its_rows_one_by_one():
    rows = _traffic(6000)
    one, many = Figures(), Figures()
    for start in range(0, len(rows), 200):
        now = NOW + start / 50
        one.row_by_row(rows[start:start + 200], now)
        many.batched(rows[start:start + 200], now)
    expected, got = one.state(), many.state()
    assert expected["alerts"], "the traffic must raise some alerts for the comparison to mean something"
    for part in expected:
        assert got[part] == expected[part], part


def test_alike_rows_become_one_group_and_a_malformed_row_changes_nothing():
    first, second = [row for row in _traffic(2000) if row.status == "ok" and not row.shadow][:2]
    batch = RowBatch.of([first] * 500)
    assert len(batch.groups) == 1
    group = next(iter(batch.groups.values()))
    assert group.count == 500 and group.cost_usd == Decimal(first.cost_usd) * 500
    before = (group.count, dict(batch.attempts), len(batch.rows), len(batch.answers), len(batch.groups))
    with pytest.raises(InvalidOperation):
        batch.add(replace(second, cost_usd="not money"))
    assert (group.count, dict(batch.attempts), len(batch.rows), len(batch.answers), len(batch.groups)) == before

"""The observer's memory stays flat however many requests pass: 100k rows over twelve simulated weeks.

Every figure the observer keeps per request (spend windows, hourly baselines, the dashboard's hours and
latency samples, the drift references) must be bounded by time or by a fixed count, never by traffic.
The test drives the real Observer in process (no server), with a clock that moves two hours per drain.
"""

from __future__ import annotations

import gc
import tracemalloc
from decimal import Decimal

import pytest

from tests.observe.support import row
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.observe import observer as observer_module
from tollway.observe.observer import Observer
from tollway.routing.table import RouteTable

ROWS = 100_000
TRACED = 15_000  # the last requests, compared under allocation tracing (which slows every allocation down) ...
WARM = 15_000    # ... after as many traced ones, so whatever they free was allocated under tracing too
PER_DRAIN = 100
STEP_S = 2 * 3600
KEYS = [f"key-{n}" for n in range(7)]
DEPLOYMENTS = [("ds-flash", "deepseek", "deepseek-chat"), ("qw-plus", "qwen", "qwen-plus")]
WEEKS = 1
LATENCY_SAMPLES = 50
DRIFT = {"recent_requests": 10, "reference_requests": 40}


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


def _observer(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Observer:
    config = Config.model_validate({
        "providers": {"deepseek": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"ds-flash": {"provider": "deepseek", "model": "deepseek-chat"}},
        "observe": {"dashboard": {"latency_samples": LATENCY_SAMPLES},
                    "alerts": {"baseline": {"weeks": WEEKS}, "drift": DRIFT,
                               "thresholds": [{"metric": "requests", "above": 10 ** 9, "window_s": 600,
                                               "scope": "key"}]}},
    })
    pricer = DeploymentPricer(Catalog.from_config_section({"catalog": config.catalog, "cny_per_usd": config.cny_per_usd}))
    monkeypatch.setattr(observer_module, "time", clock)
    observer = Observer(config.observe, config.server, RouteTable(config, resolve_secrets=False), pricer,
                        admission=None, ledger=None)
    observer._held = None  # history loading is start()'s business; here the figures fold straight away
    return observer


def _rows(start: int, count: int):
    for n in range(start, start + count):
        deployment, provider, model = DEPLOYMENTS[n % 2]
        status = "ok" if n % 13 else "error"
        yield row(f"req-{n}", "2026-11-23T10:00:00+00:00", deployment=deployment, provider=provider, model=model,
                  key_id=KEYS[n % len(KEYS)], status=status, cost=f"0.0000{n % 5 + 1}", prompt=20 + n % 50,
                  completion=60 + n % 9, ttft=1.0 + n % 7, latency=2.0 + n % 11, system_fingerprint="fp1")


def _feed(observer: Observer, clock: Clock, start: int, count: int) -> None:
    for first in range(start, start + count, PER_DRAIN):
        for r in _rows(first, PER_DRAIN):
            observer.record(r, Decimal(r.cost_usd))
        clock.now += STEP_S
        assert observer.drain() == 0
        observer._evaluate(clock.now)


def _entries(observer: Observer) -> dict[str, int]:
    """How many entries each per-request structure holds now."""
    spend, live, drift = observer.spend, observer.live, observer.drift
    return {
        "pending": len(observer._pending),
        "spend series": len(spend._windows),
        "largest spend window (buckets)": max(len(w._buckets) for w in spend._windows.values()),
        "spend cells": len(spend._cells._cells),
        "largest cell window (buckets)": max(len(w._buckets) for w in spend._cells._cells.values()),
        "baseline hours": sum(len(hours) for hours in spend.history._hours.values()),
        "dashboard hours": len(live._hours),
        "latency samples": sum(len(s) for s in live._latency.values()),
        "drift values": sum(len(m.recent) + len(m.reference) for d in drift._deployments.values()
                            for m in (d.cost, d.output)),
        "metric series": sum(len(table) for table in (observer.metrics.requests, observer.metrics.attempts,
                                                      observer.metrics.errors, observer.metrics.ttft)),
        "alerts kept": len(observer.alerts.recent),
    }


def test_the_observers_figures_stay_bounded_over_100k_requests(monkeypatch):
    clock = Clock(1_795_000_000.0)
    observer = _observer(monkeypatch, clock)
    _feed(observer, clock, 0, ROWS // 2)
    assert clock.now - 1_795_000_000.0 > WEEKS * 7 * 86400 + 86400, "the first half must outlast every window"
    assert WARM // PER_DRAIN * STEP_S > WEEKS * 7 * 86400, "the warm-up must outlast every window"
    halfway = _entries(observer)
    _feed(observer, clock, ROWS // 2, ROWS // 2 - TRACED - WARM)
    tracemalloc.start()
    try:
        _feed(observer, clock, ROWS - TRACED - WARM, WARM)
        gc.collect()  # cyclic garbage (exceptions and their frames) is not growth
        before = tracemalloc.take_snapshot()
        _feed(observer, clock, ROWS - TRACED, TRACED)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    end = _entries(observer)
    series = len(KEYS) + 2 * len(DEPLOYMENTS) + 1  # keys, deployments and providers, the route group
    hours = WEEKS * 168 + 1
    assert end["pending"] == 0
    assert end["spend series"] <= series
    assert end["largest spend window (buckets)"] <= 600 // STEP_S + 2
    assert end["spend cells"] <= len(KEYS) * len(DEPLOYMENTS)
    assert end["largest cell window (buckets)"] <= observer.settings.alerts.window_s // STEP_S + 2
    assert end["baseline hours"] <= series * hours
    assert end["dashboard hours"] <= observer.settings.dashboard.window_h + 1
    assert end["latency samples"] <= LATENCY_SAMPLES * len(DEPLOYMENTS)
    assert end["drift values"] <= (DRIFT["recent_requests"] + DRIFT["reference_requests"]) * 2 * len(DEPLOYMENTS)
    assert end["metric series"] <= 40
    assert end["alerts kept"] <= observer.settings.alerts.keep_recent
    assert end == halfway, "the second 50k requests added entries: something grows with traffic"
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 10 * TRACED, f"{TRACED} more requests grew traced memory by {grown} bytes ({grown / TRACED:.1f} per request)"

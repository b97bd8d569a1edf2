"""Workers' figures add up exactly: what a scrape under `--workers N` sums (observe/worker_metrics.py)."""

from decimal import Decimal

import orjson

from tollway.observe.metrics import GatewayMetrics
from tollway.observe.settings import MetricsSettings
from tollway.observe.worker_metrics import WorkerFiles, mark_worker_dead

ROUTE = ("chat", "ds-flash", "deepseek")


def worker_figures(requests: int, cost: str, latency_s: float) -> GatewayMetrics:
    metrics = GatewayMetrics(MetricsSettings(latency_buckets_s=[0.5, 1.0]))
    metrics.requests[(*ROUTE, "ok")] = requests
    metrics.tokens[ROUTE] = [10, 2, 0, 5, 1]
    metrics.cost[ROUTE] = Decimal(cost)
    metrics._histogram(metrics.latency, ROUTE).observe(latency_s)
    metrics.alerts[("spend_spike", "warning")] = 1
    return metrics


def test_two_workers_sum_exactly_through_their_json():
    fleet = GatewayMetrics(MetricsSettings(latency_buckets_s=[0.5, 1.0]))
    for worker in (worker_figures(3, "0.1", 0.2), worker_figures(4, "0.2", 0.7)):
        fleet.merge(orjson.loads(orjson.dumps(worker.snapshot())))
    assert fleet.requests[(*ROUTE, "ok")] == 7
    assert fleet.tokens[ROUTE] == [20, 4, 0, 10, 2]
    assert fleet.cost[ROUTE] == Decimal("0.3")  # floats would give 0.30000000000000004
    assert fleet.latency[ROUTE].cumulative() == [("0.5", 1), ("1.0", 2), ("+Inf", 2)]
    assert fleet.alerts[("spend_spike", "warning")] == 2


def test_an_exited_worker_keeps_counting_but_shows_no_gauges(tmp_path, monkeypatch):
    files = WorkerFiles(tmp_path)
    metrics = worker_figures(5, "1.5", 0.1)
    metrics.in_flight = lambda: 2
    files.write(metrics)
    [(pid, gauges)] = files.gauge_snapshots()
    assert gauges["in_flight"] == 2
    mark_worker_dead(tmp_path, int(pid))
    assert files.gauge_snapshots() == []
    assert [s["requests"] for s in files.counter_snapshots()] == [[[*ROUTE, "ok", 5]]]

"""GET /metrics: Prometheus counters and histograms built from ledger rows, gauges read from the parts they
describe (the deployments' breakers, the ledger writer, the count of requests in flight).

Rows are folded in by the observer's drain (never on the request path), so counters are plain dicts and
Python ints: no locks, no per-increment objects. Cost is summed as an exact Decimal and converted to a
float exactly once, when a scrape renders it, so `tollway_cost_usd_total` is the correctly rounded value
of the ledger's exact sum. Every series is labelled by route group, deployment and provider; those come
from the config, so cardinality is bounded. Per-key series are opt-in and capped (`metrics.max_keys`).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tollway.ledger.schema import LedgerRow
from tollway.observe.budget_view import BudgetUse
from tollway.observe.key_metrics import key_families, table_key_states
from tollway.observe.row_batch import RowBatch, RowGroup
from tollway.observe.settings import MetricsSettings
from tollway.observe.worker_metrics import WorkerFiles, fleet_dir
from tollway.routing.breaker import CLOSED, HALF_OPEN, OPEN

if TYPE_CHECKING:
    from tollway.ledger.drain import LedgerDrain
    from tollway.routing.table import RoutedDeployment

ROUTE_LABELS = ["route_group", "deployment", "provider"]
TOKEN_KINDS = ("prompt", "cached", "cache_write", "completion", "reasoning")
BREAKER_STATES = (CLOSED, OPEN, HALF_OPEN)
OTHER_KEYS = "other"

Route = tuple[str, str, str]
_INT_COUNTERS = ("requests", "errors", "attempts", "fallbacks", "hedges", "unpriced", "key_requests", "key_tokens",
                 "alerts")


class LatencyHistogram:
    """Counts per bucket and a sum, in seconds; Prometheus-style cumulative buckets on output."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts):
            running += count
            out.append((bound, running))
        return out


class GatewayMetrics:
    """The figures behind /metrics. `add(row)` per finished request; `collect()` at scrape time.

    Gauges come from what is given: `deployments` (name -> deployment, for breaker states), `ledger` (its
    queue and health) and `in_flight` (a reading of requests between arrival and their row); each left
    out is a gauge left out."""

    def __init__(self, settings: MetricsSettings, deployments: Mapping[str, RoutedDeployment] | None = None,
                 ledger: LedgerDrain | None = None, in_flight: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.deployments = deployments
        self.ledger = ledger
        self.in_flight = in_flight
        self.requests: Counter[tuple[str, str, str, str]] = Counter()
        self.tokens: dict[Route, list[int]] = {}
        self.cost: dict[Route, Decimal] = {}
        self.errors: Counter[tuple[str, str, str, str]] = Counter()
        self.attempts: Counter[tuple[str, str, str, str]] = Counter()
        self.fallbacks: Counter[Route] = Counter()
        self.hedges: Counter[Route] = Counter()
        self.unpriced: Counter[Route] = Counter()
        self.ttft: dict[Route, LatencyHistogram] = {}
        self.latency: dict[Route, LatencyHistogram] = {}
        self.key_requests: Counter[str] = Counter()
        self.key_tokens: Counter[str] = Counter()
        self.key_cost: dict[str, Decimal] = {}
        self.alerts: Counter[tuple[str, str]] = Counter()
        self.budgets: list[BudgetUse] | None = None
        self.on_fold: Callable[[GatewayMetrics], None] | None = None  # set under --workers N

    def add(self, row: LedgerRow) -> None:
        self.add_batch(RowBatch.of([row]))

    def add_batch(self, batch: RowBatch) -> None:
        """Fold a drain's rows in: each counter once per group of alike rows, histograms once per row."""
        requests, tokens_by_route, cost = self.requests, self.tokens, self.cost
        for group in batch.groups.values():
            route = group.route
            count = group.count
            requests[(*route, group.status)] += count
            tokens = tokens_by_route.get(route)
            if tokens is None:
                tokens = tokens_by_route[route] = [0] * len(TOKEN_KINDS)
            tokens[0] += group.prompt_tokens
            tokens[1] += group.cached_tokens
            tokens[2] += group.cache_write_tokens
            tokens[3] += group.completion_tokens
            tokens[4] += group.reasoning_tokens
            cost[route] = cost.get(route, Decimal(0)) + group.cost_usd
            if not group.priced:
                self.unpriced[route] += count
            if group.reason is not None:
                self.errors[(*route, group.reason)] += count
            if group.fell_back:
                self.fallbacks[route] += count
            if group.hedged:
                self.hedges[route] += count
            if self.settings.key_labels:
                self._add_key(group)
        for route, timings in batch.timings.items():
            self._observe_timings(route, timings)
        for (route_group, deployment, provider, outcome), count in batch.attempts.items():
            self.attempts[(route_group, str(deployment), str(provider), str(outcome))] += count
        if self.on_fold is not None:
            self.on_fold(self)

    def _observe_timings(self, route: Route, timings: list[tuple[float | None, float | None]]) -> None:
        ttft = latency = None
        for ttft_ms, latency_ms in timings:
            if ttft_ms is not None:
                if ttft is None:
                    ttft = self._histogram(self.ttft, route)
                ttft.observe(ttft_ms / 1000)
            if latency_ms is not None:
                if latency is None:
                    latency = self._histogram(self.latency, route)
                latency.observe(latency_ms / 1000)

    def count_alert(self, kind: str, severity: str) -> None:
        self.alerts[(kind, severity)] += 1

    def _histogram(self, table: dict[Route, LatencyHistogram], route: Route) -> LatencyHistogram:
        histogram = table.get(route)
        if histogram is None:
            histogram = table[route] = LatencyHistogram(self.settings.latency_buckets_s)
        return histogram

    def _add_key(self, group: RowGroup) -> None:
        key = group.key_id
        if key not in self.key_requests and len(self.key_requests) >= self.settings.max_keys:
            key = OTHER_KEYS
        self.key_requests[key] += group.count
        self.key_tokens[key] += group.prompt_tokens + group.completion_tokens
        self.key_cost[key] = self.key_cost.get(key, Decimal(0)) + group.cost_usd

    def snapshot(self) -> dict:
        """The counters and histograms as JSON-ready lists (cost as exact decimal text), for `merge`."""
        def pairs(table: Mapping) -> list:
            return [[*key, value] if isinstance(key, tuple) else [key, value] for key, value in table.items()]

        def decimals(table: Mapping) -> list:
            return [[*key, str(value)] if isinstance(key, tuple) else [key, str(value)] for key, value in table.items()]

        return {**{name: pairs(getattr(self, name)) for name in _INT_COUNTERS},
                "tokens": pairs(self.tokens), "cost": decimals(self.cost), "key_cost": decimals(self.key_cost),
                **{name: [[*route, h.counts, h.total] for route, h in getattr(self, name).items()]
                   for name in ("ttft", "latency")}}

    def merge(self, snapshot: dict) -> None:
        """Add another worker's `snapshot()` to these figures (sums are exact: ints and Decimals)."""
        for name in _INT_COUNTERS:
            table = getattr(self, name)
            for *key, value in snapshot.get(name, ()):
                table[key[0] if len(key) == 1 else tuple(key)] += value
        for *route, counts in snapshot.get("tokens", ()):
            into = self.tokens.setdefault(tuple(route), [0] * len(TOKEN_KINDS))
            for i, value in enumerate(counts):
                into[i] += value
        for name in ("cost", "key_cost"):
            table = getattr(self, name)
            for *key, value in snapshot.get(name, ()):
                label = key[0] if name == "key_cost" else tuple(key)
                table[label] = table.get(label, Decimal(0)) + Decimal(value)
        for name in ("ttft", "latency"):
            for *route, counts, total in snapshot.get(name, ()):
                histogram = self._histogram(getattr(self, name), tuple(route))
                if len(counts) == len(histogram.counts):  # a worker with other buckets is left out
                    histogram.counts = [a + b for a, b in zip(histogram.counts, counts)]
                    histogram.total += total

    def gauge_snapshot(self) -> dict:
        """This process's gauges (breakers, ledger queue, requests in flight), for another worker's scrape."""
        ledger = self.ledger
        return {
            "in_flight": self.in_flight() if self.in_flight is not None else None,
            "breakers": None if self.deployments is None else
            [[name, dep.provider, dep.breaker.state, dep.breaker.opened_count] for name, dep in self.deployments.items()],
            "keys": None if self.deployments is None else table_key_states(self.deployments),
            "ledger": None if ledger is None else
            [ledger.pending, ledger.unwritten, ledger.health.quarantined, ledger.health.restarts,
             0 if ledger.problem() is None else 1],
        }

    def collect(self) -> Iterator[Metric]:
        yield _counter("tollway_requests", "Finished requests, by outcome status.", [*ROUTE_LABELS, "status"],
                       self.requests.items())
        yield _counter("tollway_tokens", "Tokens by kind (prompt includes cached and cache_write; completion "
                       "includes reasoning).", [*ROUTE_LABELS, "kind"],
                       (((*route, kind), counts[i]) for route, counts in self.tokens.items()
                        for i, kind in enumerate(TOKEN_KINDS)))
        yield _counter("tollway_cost_usd", "Spend in US dollars (exact ledger sum, rendered once).", ROUTE_LABELS,
                       self.cost.items())
        yield _counter("tollway_unpriced_requests", "Requests whose cost is unknown (a needed rate is missing).",
                       ROUTE_LABELS, self.unpriced.items())
        yield _counter("tollway_errors", "Failed requests, by reason.", [*ROUTE_LABELS, "reason"], self.errors.items())
        yield _counter("tollway_attempts", "Upstream attempts, by the deployment tried and the outcome.",
                       [*ROUTE_LABELS, "outcome"], self.attempts.items())
        yield _counter("tollway_fallbacks", "Requests answered by a deployment other than the plan's first.",
                       ROUTE_LABELS, self.fallbacks.items())
        yield _counter("tollway_hedged_requests", "Requests that ran a hedge attempt.", ROUTE_LABELS,
                       self.hedges.items())
        yield _histogram("tollway_ttft_seconds", "Time to the first byte of content sent to the client.", self.ttft)
        yield _histogram("tollway_request_duration_seconds", "Time from arrival to the last byte.", self.latency)
        yield _counter("tollway_alerts", "Alerts raised, by kind.", ["kind", "severity"], self.alerts.items())
        if self.settings.key_labels:
            yield _counter("tollway_key_requests", "Requests per virtual key (capped).", ["key_id"],
                           (((k,), v) for k, v in self.key_requests.items()))
            yield _counter("tollway_key_tokens", "Prompt plus completion tokens per virtual key (capped).", ["key_id"],
                           (((k,), v) for k, v in self.key_tokens.items()))
            yield _counter("tollway_key_cost_usd", "Spend per virtual key (capped).", ["key_id"],
                           (((k,), v) for k, v in self.key_cost.items()))
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        if self.in_flight is not None:
            yield _gauge("tollway_in_flight_requests", "Requests between arrival and their ledger row.", [],
                         [((), self.in_flight())])
        if self.deployments is not None:
            states = GaugeMetricFamily("tollway_breaker_state", "1 for the current circuit-breaker state.",
                                       labels=["deployment", "provider", "state"])
            opened = CounterMetricFamily("tollway_breaker_opened", "Times the breaker opened.",
                                         labels=["deployment", "provider"])
            for name, dep in self.deployments.items():
                current = dep.breaker.state
                for state in BREAKER_STATES:
                    states.add_metric([name, dep.provider, state], 1 if state == current else 0)
                opened.add_metric([name, dep.provider], dep.breaker.opened_count)
            yield states
            yield opened
            yield from key_families([(None, table_key_states(self.deployments))])
        ledger = self.ledger
        if ledger is not None:
            yield _gauge("tollway_ledger_pending_rows", "Rows queued for the ledger writer.", [],
                         [((), ledger.pending)])
            yield _gauge("tollway_ledger_rows_unwritten", "Rows not yet in the ledger database (queued or spooled).",
                         [], [((), ledger.unwritten)])
            yield _counter("tollway_ledger_rows_quarantined", "Rows the ledger store refused, kept in its quarantine.",
                           [], [((), ledger.health.quarantined)])
            yield _counter("tollway_ledger_writer_restarts", "Times the ledger writer task ended and was restarted.",
                           [], [((), ledger.health.restarts)])
            yield _gauge("tollway_ledger_accounting_stopped", "1 while accounting is stopped or behind (/readyz 503).",
                         [], [((), 0 if ledger.problem() is None else 1)])
        if self.budgets is not None:
            yield _gauge("tollway_budget_spent_usd", "Spend counted against each budget.", ["budget"],
                         (((b.name,), b.spent_usd) for b in self.budgets))
            yield _gauge("tollway_budget_limit_usd", "Each budget's limit.", ["budget"],
                         (((b.name,), b.limit_usd) for b in self.budgets if b.limit_usd is not None))
            yield _gauge("tollway_budget_used_ratio", "Spend over limit.", ["budget"],
                         (((b.name,), b.ratio) for b in self.budgets if b.ratio is not None))


class _Collector:
    """Adapts GatewayMetrics to prometheus_client's registry; `before` folds pending rows in first."""

    def __init__(self, metrics: GatewayMetrics, before: Callable[[], object]) -> None:
        self._metrics = metrics
        self._before = before

    def collect(self) -> Iterator[Metric]:
        self._before()
        return self._metrics.collect()


class _FleetCollector:
    """Under `serve --workers N`: the sum of every worker's figures, whichever worker the scrape reached.

    Each worker keeps its figures in process (the fold stays lock-free) and writes them to its own file
    after each fold and at each scrape; a scrape adds all the files up (worker_metrics.py)."""

    def __init__(self, metrics: GatewayMetrics, before: Callable[[], object], files: WorkerFiles) -> None:
        self._metrics = metrics
        self._before = before
        self._files = files

    def collect(self) -> Iterator[Metric]:
        self._before()
        self._files.write(self._metrics)
        fleet = GatewayMetrics(self._metrics.settings)
        for snapshot in self._files.counter_snapshots():
            fleet.merge(snapshot)
        fleet.budgets = self._metrics.budgets
        yield from fleet.collect()
        yield from _fleet_gauges(self._files.gauge_snapshots())


def make_registry(metrics: GatewayMetrics, before: Callable[[], object]) -> CollectorRegistry:
    """One worker's figures; or, when the parent of `--workers N` named a directory, the fleet's sum (and
    no process_* figures, which would jump between workers from scrape to scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    directory = fleet_dir()
    if directory is None:
        registry.register(_Collector(metrics, before))
        ProcessCollector(registry=registry)
        return registry
    files = WorkerFiles(directory)
    metrics.on_fold = files.write
    registry.register(_FleetCollector(metrics, before, files))
    return registry


def _fleet_gauges(workers: list[tuple[str, dict]]) -> Iterator[Metric]:
    """Live workers' gauges: requests in flight and the ledger's queue summed; breakers per `worker`,
    since each worker has its own breaker for each deployment."""
    readings = [r for _, r in workers if r.get("in_flight") is not None]
    if readings:
        yield _gauge("tollway_in_flight_requests", "Requests between arrival and their ledger row.", [],
                     [((), sum(r["in_flight"] for r in readings))])
    breakers = [(worker, r["breakers"]) for worker, r in workers if r.get("breakers") is not None]
    if breakers:
        states = GaugeMetricFamily("tollway_breaker_state", "1 for the current circuit-breaker state.",
                                   labels=["deployment", "provider", "state", "worker"])
        opened = CounterMetricFamily("tollway_breaker_opened", "Times the breaker opened.",
                                     labels=["deployment", "provider", "worker"])
        for worker, table in breakers:
            for name, provider, current, opened_count in table:
                for state in BREAKER_STATES:
                    states.add_metric([name, provider, state, worker], 1 if state == current else 0)
                opened.add_metric([name, provider, worker], opened_count)
        yield states
        yield opened
    yield from key_families((worker, r.get("keys") or []) for worker, r in workers)
    ledgers = [r["ledger"] for _, r in workers if r.get("ledger") is not None]
    if ledgers:
        pending, unwritten, quarantined, restarts = (sum(x[i] for x in ledgers) for i in range(4))
        yield _gauge("tollway_ledger_pending_rows", "Rows queued for the ledger writer.", [], [((), pending)])
        yield _gauge("tollway_ledger_rows_unwritten", "Rows not yet in the ledger database (queued or spooled).",
                     [], [((), unwritten)])
        yield _counter("tollway_ledger_rows_quarantined", "Rows the ledger store refused, kept in its quarantine.",
                       [], [((), quarantined)])
        yield _counter("tollway_ledger_writer_restarts", "Times the ledger writer task ended and was restarted.",
                       [], [((), restarts)])
        yield _gauge("tollway_ledger_accounting_stopped", "1 while accounting is stopped or behind (/readyz 503).",
                     [], [((), max(x[4] for x in ledgers))])


def _counter(name: str, doc: str, labels: list[str], items) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for label_values, value in items:
        family.add_metric(list(label_values), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], items) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for label_values, value in items:
        family.add_metric(list(label_values), value)
    return family


def _histogram(name: str, doc: str, table: dict[Route, LatencyHistogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=ROUTE_LABELS)
    for route, histogram in table.items():
        family.add_metric(list(route), histogram.cumulative(), histogram.total)
    return family

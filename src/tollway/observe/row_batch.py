"""A drain's ledger rows summed by what the figures group them by, read once for every consumer.

The observer folds each finished request into the Prometheus counters, the dashboard's hourly totals,
the spend windows and baselines, and the drift guards. Folding row by row made each of those read the
same fields, parse the same cost string and walk the same attempts again (five Decimal parses and
a dozen dict updates per request, ~30 us). Rows of one drain share a handful of shapes (route,
status, key, model), so here each row is read once into the sums of its shape, and each consumer then
updates its figures once per shape. Sums stay exact: costs are Decimals added in arrival order. The
observer hands each row's exact cost alongside it (the Decimal the row's text was made from); a row
alone (read back from a ledger, or in a test) has its text parsed.

Only what differs per row stays per row, in arrival order: the latency pairs per route (histograms
need every value) and per model (the dashboard's percentiles keep the latest answers), and the
answered rows the drift guards compare one by one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from tollway.ledger.schema import LedgerRow
from tollway.observe.live_figures import Model, model_of
from tollway.observe.row_facts import error_reason, fell_back, hedged

AttemptKey = tuple[str, object, object, object]  # (route group, deployment, provider, outcome) as in the row
Route = tuple[str, str, str]  # (route group, deployment, provider)
Timing = tuple["float | None", "float | None"]  # (ttft_ms, latency_ms)
Sample = tuple["float | None", float]  # an answered Timing: the latency is known


class RowGroup:
    """Rows that agree on every label the figures use, and their summed numbers."""

    __slots__ = ("route_group", "deployment", "provider", "status", "key_id", "upstream_model", "requested_model",
                 "shadow", "priced", "fell_back", "hedged", "reason", "count", "prompt_tokens", "cached_tokens",
                 "cache_write_tokens", "completion_tokens", "reasoning_tokens", "cost_usd", "timings", "samples")

    def __init__(self, row: LedgerRow, fell_back_: bool, hedged_: bool, reason: str | None, timings: list[Timing],
                 samples: list[Sample] | None) -> None:
        self.route_group, self.deployment, self.provider = row.route_group, row.deployment, row.provider
        self.status, self.key_id = row.status, row.key_id
        self.upstream_model, self.requested_model = row.upstream_model, row.requested_model
        self.shadow, self.priced = row.shadow, row.priced
        self.fell_back, self.hedged, self.reason = fell_back_, hedged_, reason
        self.count = self.prompt_tokens = self.cached_tokens = self.cache_write_tokens = 0
        self.completion_tokens = self.reasoning_tokens = 0
        self.cost_usd = Decimal(0)
        self.timings = timings  # its route's (ttft_ms, latency_ms) pairs, shared with the route's other groups
        self.samples = samples  # its model's answered pairs with a latency (None: not answered, or a shadow)

    @property
    def route(self) -> tuple[str, str, str]:
        return self.route_group, self.deployment, self.provider

    @property
    def errors(self) -> int:
        return self.count if self.status != "ok" else 0


class RowBatch:
    """`add(row)` for each row of a drain, then hand the batch to every consumer."""

    __slots__ = ("groups", "attempts", "answers", "rows", "timings", "samples")

    def __init__(self) -> None:
        self.groups: dict[tuple, RowGroup] = {}
        self.timings: dict[Route, list[Timing]] = {}   # per route, in arrival order
        self.samples: dict[Model, list[Sample]] = {}   # per (provider, model), answered rows only, in order
        self.attempts: dict[AttemptKey, int] = {}
        self.answers: list[tuple[LedgerRow, Decimal]] = []  # answered, priced, not shadow: for the drift guards
        self.rows: list[LedgerRow] = []

    @classmethod
    def of(cls, rows: Iterable[LedgerRow]) -> RowBatch:
        batch = cls()
        for row in rows:
            batch.add(row)
        return batch

    def add(self, row: LedgerRow, cost: Decimal | None = None) -> None:
        """Count `row`, costing `cost` (None: the amount its `cost_usd` text says). Raises (ValueError,
        AttributeError, ...) for a malformed row before counting any of it."""
        if cost is None:
            cost = Decimal(row.cost_usd)
        attempts = row.attempts
        status = row.status
        if not attempts or (len(attempts) == 1 and attempts[0].get("outcome") == "ok" and not attempts[0].get("hedge")):
            fell, hedge = False, False  # the plain answered request: one attempt that answered
        else:
            fell, hedge = fell_back(row), hedged(row)
        reason = None if status == "ok" else error_reason(row)
        tried = [(a.get("deployment", ""), a.get("provider", ""), a.get("outcome", "")) for a in attempts]
        shape = (row.route_group, row.deployment, row.provider, status, row.key_id, row.upstream_model,
                 row.requested_model, row.shadow, row.priced, fell, hedge, reason)
        # nothing above changed the batch (a malformed cost or attempt list raised there)
        group = self.groups.get(shape)
        if group is None:
            group = self.groups[shape] = self._group(row, fell, hedge, reason)
        group.count += 1
        group.prompt_tokens += row.prompt_tokens
        group.cached_tokens += row.cached_tokens
        group.cache_write_tokens += row.cache_write_tokens
        group.completion_tokens += row.completion_tokens
        group.reasoning_tokens += row.reasoning_tokens
        group.cost_usd += cost
        timing = (row.ttft_ms, row.latency_ms)
        group.timings.append(timing)
        if group.samples is not None and timing[1] is not None:
            group.samples.append(timing)  # type: ignore[arg-type]  # the test above: latency is not None
        counts = self.attempts
        route_group = row.route_group
        for deployment, provider, outcome in tried:
            key = (route_group, deployment, provider, outcome)
            counts[key] = counts.get(key, 0) + 1
        if status == "ok" and not row.shadow and row.deployment and row.priced:
            self.answers.append((row, cost))
        self.rows.append(row)

    def _group(self, row: LedgerRow, fell: bool, hedge: bool, reason: str | None) -> RowGroup:
        route = (row.route_group, row.deployment, row.provider)
        timings = self.timings.get(route)
        if timings is None:
            timings = self.timings[route] = []
        samples = None
        if row.status == "ok" and not row.shadow:
            model = model_of(row)
            samples = self.samples.get(model)
            if samples is None:
                samples = self.samples[model] = []
        return RowGroup(row, fell, hedge, reason, timings, samples)

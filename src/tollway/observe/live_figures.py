"""The dashboard's figures: spend, tokens, errors and latency per provider and model, over the last hours.

Totals are kept per UTC hour, so the window slides by dropping whole hours: the dashboard covers the
current hour and the `window_h - 1` before it. At start-up the window is filled from the ledger, so the
page shows the same figures as `tollway report` for that period. Latency percentiles are over the latest
`latency_samples` answered requests of each model (recent behaviour is what an on-call engineer needs).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.ledger.schema import LedgerRow
from tollway.observe.baselines import hour_of
from tollway.observe.percentiles import percentile
from tollway.observe.row_facts import fell_back

if TYPE_CHECKING:
    from tollway.observe.row_batch import RowBatch, RowGroup

NO_PROVIDER = "(none)"
Model = tuple[str, str]  # (provider, model)


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def add(self, row: LedgerRow) -> None:
        self.requests += 1
        self.errors += row.status != "ok"
        self.fallbacks += fell_back(row)
        self.prompt_tokens += row.prompt_tokens
        self.cached_tokens += row.cached_tokens
        self.completion_tokens += row.completion_tokens
        self.cost_usd += Decimal(row.cost_usd)

    def add_group(self, group: RowGroup) -> None:
        """Alike rows at once (the observer's drain)."""
        self.requests += group.count
        self.errors += group.errors
        self.fallbacks += group.count if group.fell_back else 0
        self.prompt_tokens += group.prompt_tokens
        self.cached_tokens += group.cached_tokens
        self.completion_tokens += group.completion_tokens
        self.cost_usd += group.cost_usd

    def merge(self, other: Totals) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.fallbacks += other.fallbacks
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd

    def to_json(self) -> dict[str, object]:
        return {"requests": self.requests, "errors": self.errors,
                "error_rate": self.errors / self.requests if self.requests else 0.0,
                "fallbacks": self.fallbacks, "prompt_tokens": self.prompt_tokens,
                "cached_tokens": self.cached_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": f"{self.cost_usd:f}"}


def model_of(row: LedgerRow) -> Model:
    return (row.provider or NO_PROVIDER, row.upstream_model or row.requested_model)


class LiveFigures:
    def __init__(self, window_h: int, latency_samples: int) -> None:
        self.window_h = window_h
        self._samples = latency_samples
        self._hours: dict[int, dict[Model, Totals]] = {}
        self._latency: dict[Model, deque[tuple[float | None, float]]] = {}

    def add(self, row: LedgerRow, epoch_s: float) -> None:
        if row.shadow:
            return
        model = model_of(row)
        hour = self._hours.setdefault(hour_of(epoch_s), {})
        totals = hour.get(model)
        if totals is None:
            totals = hour[model] = Totals()
        totals.add(row)
        if row.status == "ok" and row.latency_ms is not None:
            samples = self._latency.get(model)
            if samples is None:
                samples = self._latency[model] = deque(maxlen=self._samples)
            samples.append((row.ttft_ms, row.latency_ms))

    def add_batch(self, batch: RowBatch, epoch_s: float) -> None:
        """A drain's rows, all finished by `epoch_s`: the same figures as `add` for each row."""
        current = hour_of(epoch_s)
        hour = self._hours.get(current)
        if hour is None:
            hour = self._hours[current] = {}
            self._prune(current)  # a new hour: drop the one that left the window, dashboard viewed or not
        for group in batch.groups.values():
            if group.shadow:
                continue
            model = (group.provider or NO_PROVIDER, group.upstream_model or group.requested_model)  # as model_of
            totals = hour.get(model)
            if totals is None:
                totals = hour[model] = Totals()
            totals.add_group(group)
        for model, timings in batch.samples.items():
            samples = self._latency.get(model)
            if samples is None:
                samples = self._latency[model] = deque(maxlen=self._samples)
            samples.extend(timings)

    def snapshot(self, now: float) -> dict[str, object]:
        first_hour = hour_of(now) - self.window_h + 1
        self._prune(hour_of(now))
        models: dict[Model, Totals] = {}
        providers: dict[str, Totals] = {}
        total = Totals()
        timeline = []
        for hour in range(first_hour, hour_of(now) + 1):
            hour_cost = Decimal(0)
            for model, totals in self._hours.get(hour, {}).items():
                models.setdefault(model, Totals()).merge(totals)
                providers.setdefault(model[0], Totals()).merge(totals)
                total.merge(totals)
                hour_cost += totals.cost_usd
            timeline.append({"hour": _iso(hour), "cost_usd": f"{hour_cost:f}"})
        return {
            "since": _iso(first_hour),
            "totals": total.to_json(),
            "models": [{"provider": p, "model": m, **t.to_json(), **self._latency_json((p, m))}
                       for (p, m), t in sorted(models.items(), key=lambda item: -item[1].cost_usd)],
            "providers": [{"provider": p, **t.to_json()}
                          for p, t in sorted(providers.items(), key=lambda item: -item[1].cost_usd)],
            "timeline": timeline,
        }

    def _prune(self, current_hour: int) -> None:
        first_hour = current_hour - self.window_h + 1
        for hour in [h for h in self._hours if h < first_hour]:
            del self._hours[hour]

    def _latency_json(self, model: Model) -> dict[str, object]:
        samples = self._latency.get(model) or ()
        ttft = sorted(t for t, _ in samples if t is not None)
        total = sorted(latency for _, latency in samples)
        return {"ttft_ms": _quantiles(ttft), "latency_ms": _quantiles(total), "latency_samples": len(total)}


def _quantiles(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}


def _iso(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).isoformat()

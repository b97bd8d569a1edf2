"""The figures of `tollway report`: per provider and model, from ledger rows, with exact money.

Definitions (shared with the dashboard through row_facts.py and percentiles.py):

- a line is one (provider, upstream model); requests that no deployment answered are on a line with
  provider "(none)" and the model the client asked for;
- error rate = requests with status other than "ok" / requests;
- fallback rate = requests answered by a deployment other than the plan's first / requests;
- TTFT and latency percentiles are over the line's answered (status "ok") requests, linear interpolation;
- savings = what the line's priced requests would have cost at the baseline model's catalog price at the
  same moments, minus what they cost. Unpriced rows (a rate was unknown, cost recorded as 0) are left
  out of both sides and counted.

Shadow copies are real spend but not client traffic: their cost is totalled separately.

Two ways to the same figures: `build_report` over rows (any ledger; needed for a baseline, which prices
each row at its own moment and size), and `report_from_rollups` over a PostgreSQL ledger's hourly sums,
attempt counts and database-computed percentiles, which does not read the window's rows into Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.catalog import Catalog, Price
from tollway.catalog.cost import UnknownPriceError, cost_usd
from tollway.core.usage import Usage
from tollway.ledger.reader import TOTAL_LINE
from tollway.ledger.schema import LedgerRow
from tollway.observe.live_figures import NO_PROVIDER, model_of
from tollway.observe.percentiles import percentile
from tollway.observe.row_facts import SIDE_OUTCOMES, fell_back

if TYPE_CHECKING:
    from tollway.ledger.postgres_reader import PostgresLedgerReader


class BaselineError(Exception):
    """The baseline model cannot price this traffic; the message names the model and what is missing."""


@dataclass
class ReportLine:
    provider: str
    model: str
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)
    unpriced: int = 0
    baseline_cost_usd: Decimal | None = None
    ttft_ms: list[float] = field(default_factory=list, repr=False)
    latency_ms: list[float] = field(default_factory=list, repr=False)
    # (which, q) -> value, when the percentiles were computed by the database rather than from the lists
    known_quantiles: dict[tuple[str, float], float | None] | None = field(default=None, repr=False)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.requests if self.requests else 0.0

    @property
    def savings_usd(self) -> Decimal | None:
        # unpriced rows add 0 to cost_usd and nothing to the baseline, so both sides cover the same rows
        return None if self.baseline_cost_usd is None else self.baseline_cost_usd - self.cost_usd

    def quantile(self, which: str, q: float) -> float | None:
        if self.known_quantiles is not None:
            return self.known_quantiles.get((which, q))
        return percentile(sorted(getattr(self, which)), q)

    def to_json(self) -> dict[str, object]:
        savings = self.savings_usd
        return {
            "provider": self.provider, "model": self.model, "requests": self.requests, "errors": self.errors,
            "error_rate": self.error_rate, "fallbacks": self.fallbacks, "fallback_rate": self.fallback_rate,
            "prompt_tokens": self.prompt_tokens, "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens, "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": f"{self.cost_usd:f}", "unpriced_requests": self.unpriced,
            "ttft_ms_p50": self.quantile("ttft_ms", 50), "ttft_ms_p99": self.quantile("ttft_ms", 99),
            "latency_ms_p50": self.quantile("latency_ms", 50), "latency_ms_p99": self.quantile("latency_ms", 99),
            "baseline_cost_usd": None if self.baseline_cost_usd is None else f"{self.baseline_cost_usd:f}",
            "savings_usd": None if savings is None else f"{savings:f}",
        }


@dataclass
class ProviderAttempts:
    provider: str
    attempts: int = 0
    failed: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0


@dataclass
class Report:
    lines: list[ReportLine]
    attempts: list[ProviderAttempts]
    shadow_cost_usd: Decimal
    daily_cost_usd: dict[str, Decimal]  # UTC day -> spend of client traffic
    baseline: str | None
    since: datetime | None
    until: datetime | None
    total_quantiles: dict[tuple[str, float], float | None] | None = None
    by: str | None = None  # the dimension the lines group by (their `provider` holds its value); None: provider, model
    counted_once: ReportLine | None = None  # the total when lines may overlap (a request under each of its tags)

    @property
    def total(self) -> ReportLine:
        if self.counted_once is not None:
            return self.counted_once
        total = ReportLine("total", "")
        for line in self.lines:
            for name in ("requests", "errors", "fallbacks", "prompt_tokens", "cached_tokens", "completion_tokens",
                         "reasoning_tokens", "cost_usd", "unpriced"):
                setattr(total, name, getattr(total, name) + getattr(line, name))
            total.ttft_ms += line.ttft_ms
            total.latency_ms += line.latency_ms
            if line.baseline_cost_usd is not None:
                total.baseline_cost_usd = (total.baseline_cost_usd or Decimal(0)) + line.baseline_cost_usd
        total.known_quantiles = self.total_quantiles
        return total


BaselinePricer = Callable[[LedgerRow], Decimal]


def baseline_pricer(catalog: Catalog, spec: str) -> BaselinePricer:
    """`provider/model` from the catalog -> a function pricing a row's tokens at that model's rates."""
    provider, _, model = spec.partition("/")
    if not provider or not model or catalog.entry(provider, model) is None:
        raise BaselineError(f"--baseline {spec!r}: not a catalog model; use PROVIDER/MODEL as listed by "
                            "`tollway catalog` (e.g. openai/gpt-4o)")

    def price_row(row: LedgerRow) -> Decimal:
        at = datetime.fromisoformat(row.ts)
        price: Price | None = catalog.price(provider, model, at, row.prompt_tokens)
        if price is None:
            raise BaselineError(f"--baseline {spec}: the catalog has no price in force at {row.ts}")
        usage = Usage(row.prompt_tokens, row.cached_tokens, row.cache_write_tokens, row.completion_tokens,
                      row.reasoning_tokens)
        try:
            return cost_usd(usage, price)
        except UnknownPriceError as exc:
            raise BaselineError(f"--baseline {spec}: {exc}") from None

    return price_row


def build_report(rows: Iterable[LedgerRow], baseline: BaselinePricer | None = None, baseline_name: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 grouping: tuple[str, Callable[[LedgerRow], list[str]]] | None = None) -> Report:
    """Lines per provider and model, or with `grouping` (dimension, row -> its groups) per group; a row may
    count under several groups (tags), so the total is then summed over the rows once."""
    lines: dict[tuple[str, str], ReportLine] = {}
    once = ReportLine("total", "", baseline_cost_usd=Decimal(0) if baseline else None) if grouping else None
    attempts: dict[str, ProviderAttempts] = {}
    shadow_cost = Decimal(0)
    daily: dict[str, Decimal] = {}
    for row in rows:
        if row.shadow:
            shadow_cost += Decimal(row.cost_usd)
            continue
        daily[row.ts[:10]] = daily.get(row.ts[:10], Decimal(0)) + Decimal(row.cost_usd)
        for key in ([(group, "") for group in grouping[1](row)] if grouping else [model_of(row)]):
            line = lines.get(key)
            if line is None:
                line = lines[key] = ReportLine(*key, baseline_cost_usd=Decimal(0) if baseline else None)
            _add(line, row, baseline)
        if once is not None:
            _add(once, row, baseline)
        for attempt in row.attempts:
            outcome = attempt.get("outcome")
            if outcome == "skipped" or outcome in SIDE_OUTCOMES and outcome != "cancelled":
                continue
            provider = str(attempt.get("provider", ""))
            counted = attempts.setdefault(provider, ProviderAttempts(provider))
            counted.attempts += 1
            counted.failed += outcome not in ("ok", "cancelled")  # a hedge loser was not a failure
    ordered = sorted(lines.values(), key=lambda line: (-line.cost_usd, line.provider, line.model))
    return Report(ordered, sorted(attempts.values(), key=lambda a: a.provider), shadow_cost, dict(sorted(daily.items())),
                  baseline_name, since, until, by=grouping[0] if grouping else None, counted_once=once)


def _add(line: ReportLine, row: LedgerRow, baseline: BaselinePricer | None) -> None:
    line.requests += 1
    line.errors += row.status != "ok"
    line.fallbacks += fell_back(row)
    line.prompt_tokens += row.prompt_tokens
    line.cached_tokens += row.cached_tokens
    line.completion_tokens += row.completion_tokens
    line.reasoning_tokens += row.reasoning_tokens
    line.cost_usd += Decimal(row.cost_usd)
    if not row.priced:
        line.unpriced += 1
    elif baseline is not None and line.baseline_cost_usd is not None and (row.prompt_tokens or row.completion_tokens):
        line.baseline_cost_usd += baseline(row)
    if row.status == "ok":
        if row.ttft_ms is not None:
            line.ttft_ms.append(row.ttft_ms)
        if row.latency_ms is not None:
            line.latency_ms.append(row.latency_ms)


def report_from_rollups(reader: "PostgresLedgerReader", since: datetime | None = None,
                        until: datetime | None = None) -> Report:
    """The report of [since, until) from the ledger's roll-ups: the same figures as build_report over
    the same rows (tests/observe/test_readside_postgres.py holds them equal), without a baseline."""
    lines: dict[tuple[str, str], ReportLine] = {}
    shadow_cost = Decimal(0)
    daily: dict[str, Decimal] = {}
    for hour in reader.hourly(since, until):
        if hour.shadow:
            shadow_cost += hour.cost_usd
            continue
        day = hour.hour.date().isoformat()
        daily[day] = daily.get(day, Decimal(0)) + hour.cost_usd
        key = (hour.provider or NO_PROVIDER, hour.model or hour.requested_model)
        line = lines.get(key)
        if line is None:
            line = lines[key] = ReportLine(*key, known_quantiles={})
        line.requests += hour.requests
        line.errors += hour.requests if hour.status != "ok" else 0
        line.fallbacks += hour.fallbacks or 0
        line.prompt_tokens += hour.prompt_tokens
        line.cached_tokens += hour.cached_tokens
        line.completion_tokens += hour.completion_tokens
        line.reasoning_tokens += hour.reasoning_tokens
        line.cost_usd += hour.cost_usd
        line.unpriced += hour.unpriced
    latencies = reader.latencies(since, until)
    for key, line in lines.items():
        _set_quantiles(line.known_quantiles, latencies.get(key))
    total_quantiles: dict[tuple[str, float], float | None] = {}
    _set_quantiles(total_quantiles, latencies.get(TOTAL_LINE))
    attempts = [ProviderAttempts(provider, n, failed) for provider, (n, failed) in sorted(reader.attempts(since, until).items())]
    ordered = sorted(lines.values(), key=lambda line: (-line.cost_usd, line.provider, line.model))
    return Report(ordered, attempts, shadow_cost, dict(sorted(daily.items())), None, since, until, total_quantiles)


def _set_quantiles(into: dict | None, found) -> None:
    if into is None or found is None:
        return
    into.update({("ttft_ms", 50): found.ttft_p50, ("ttft_ms", 99): found.ttft_p99,
                 ("latency_ms", 50): found.latency_p50, ("latency_ms", 99): found.latency_p99})

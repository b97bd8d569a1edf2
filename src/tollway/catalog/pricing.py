"""From one dated price version to the exact USD rates of one request.

A version can depend on the hour (peak/off-peak), the prompt length (tiers, long-context repricing) and
the service tier (batch, flex, priority). All combinations are computed once when the catalog loads, so
resolving a request is a couple of lookups. Rates the sources do not give stay unknown: they are
Decimal('NaN') in a Price, and cost computation refuses to use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal
from types import MappingProxyType

from tollway.catalog.peak_hours import PeakRule
from tollway.catalog.schema import (
    RATE_FIELDS,
    SERVICE_TIERS,
    ModelEntry,
    PriceVersion,
    Ratios,
    ServiceTier,
    ServiceTierName,
)

UNKNOWN = Decimal("NaN")
START_UNKNOWN = date.min  # Price.effective_from of a version whose start the sources do not give
_EXACT = Context(prec=40)  # conversions and factors keep 40 significant digits (far below a nano-cent)

Rates = dict[str, Decimal | None]  # None = unknown


@dataclass(frozen=True, slots=True)
class Price:
    """The rate for ONE request: USD per million tokens, Decimal; NaN marks a rate the sources lack.

    currency/original keep what the source said (e.g. CNY and its amounts) next to the converted USD.
    cache_write is the 5-minute (or only) cache-write rate; cache_write_1h the 1-hour one (None = same).
    explicit_cached_input is the rate of a hit on a cache the client created on purpose (DashScope's explicit
    cache bills it apart from an automatic hit); None = the cached_input rate.
    """

    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    currency: str
    original: Mapping | None
    effective_from: date
    source: str
    verified: bool
    note: str
    cache_write_1h: Decimal | None = None
    provider: str = ""
    model: str = ""
    tier: str = "standard"
    effective_at: datetime | None = None
    explicit_cached_input: Decimal | None = None
    region: str | None = None

    @property
    def unknown(self) -> tuple[str, ...]:
        """Names of the rates the catalog does not know for this request."""
        rates = {name: getattr(self, name) for name in ("input", "cached_input", "cache_write", "output")}
        if self.cache_write_1h is not None:
            rates["cache_write_1h"] = self.cache_write_1h
        if self.explicit_cached_input is not None:
            rates["explicit_cached_input"] = self.explicit_cached_input
        return tuple(name for name, rate in rates.items() if rate.is_nan())

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict: rates as exact decimal strings, unknown rates as null."""
        def text(value: Decimal | None) -> str | None:
            return None if value is None or value.is_nan() else str(value)

        original = None
        if self.original is not None:
            original = {key: text(value) if isinstance(value, Decimal) else value for key, value in self.original.items()}
        return {
            "provider": self.provider, "model": self.model, "tier": self.tier,
            "input": text(self.input), "cached_input": text(self.cached_input),
            "explicit_cached_input": text(self.explicit_cached_input), "cache_write": text(self.cache_write),
            "cache_write_1h": text(self.cache_write_1h), "output": text(self.output), "currency": self.currency,
            "original": original, "effective_from": None if self.effective_at is None else self.effective_at.isoformat(),
            "source": self.source, "verified": self.verified, "note": self.note, "region": self.region,
        }

    @classmethod
    def usd(cls, input: Decimal, output: Decimal, cached_input: Decimal | None = None,
            cache_write: Decimal | None = None, source: str = "config", note: str = "") -> "Price":
        """A flat USD price given directly (e.g. a deployment's own price in tollway.yaml).

        Without cached_input, cached tokens cost the input rate; without cache_write, writes cost input.
        """
        return cls(input=input, cached_input=input if cached_input is None else cached_input,
                   cache_write=input if cache_write is None else cache_write, output=output,
                   currency="USD", original=None, effective_from=START_UNKNOWN, source=source,
                   verified=True, note=note)


def resolve_rates(given: Rates, ratios: Ratios) -> Rates:
    """Fill the cache rates a source leaves out: from `ratios` x input, else the documented defaults.

    Default: a cache write costs the plain input rate (DeepSeek, OpenAI, Kimi, GLM bill no separate write),
    a 1-hour write costs what a write costs, and a hit on an explicit cache costs what any hit costs. A
    cached-input rate is never assumed: without a rate or a ratio it is unknown.
    """
    rates: Rates = {"input": given.get("input"), "output": given.get("output")}
    for name in ("cached_input", "explicit_cached_input", "cache_write", "cache_write_1h"):
        if name in given:
            rates[name] = given[name]
            continue
        ratio = getattr(ratios, name)
        if ratio is not None:
            rates[name] = None if rates["input"] is None else _EXACT.multiply(rates["input"], ratio)
        elif name == "cache_write":
            rates[name] = rates["input"]
        elif name == "cache_write_1h":
            rates[name] = rates["cache_write"]
        elif name == "explicit_cached_input":
            rates[name] = rates["cached_input"]
        else:
            rates[name] = None
    return rates


def _scaled(rates: Rates, factor: Decimal) -> Rates:
    return {name: None if rate is None else _EXACT.multiply(rate, factor) for name, rate in rates.items()}


class VersionPricer:
    """One price version, compiled: every (prompt tier, peak/off-peak, service tier) combination precomputed."""

    __slots__ = ("version", "starts", "bounds", "rule", "table", "tier_limits")

    def __init__(self, entry: ModelEntry, version: PriceVersion, calendars: Mapping[str, Iterable[date]],
                 cny_per_usd: Decimal | None) -> None:
        self.version = version
        self.starts = version.effective_from
        self.bounds = tuple(tier.above for tier in version.prompt_tiers)
        self.rule = None
        if version.peak_hours is not None:
            calendar = version.peak_hours.calendar
            self.rule = PeakRule(version.peak_hours, calendars.get(calendar, ()) if calendar else ())
        self.tier_limits: dict[str, int | None] = {  # looked up by the request's tier name, any text
            name: spec.max_prompt_tokens for name, spec in version.service_tiers.items()}
        self.table = _PriceTable(entry, version, self.rule, cny_per_usd).build()

    def price(self, at: datetime, prompt_tokens: int, tier: str) -> Price | None:
        limit = self.tier_limits.get(tier)
        if limit is not None and prompt_tokens > limit:
            return None
        level = _tier_index(self.bounds, prompt_tokens)
        off_peak = self.rule is not None and not self.rule.is_peak(at)
        return self.table.get((level, off_peak, tier))


def _tier_index(bounds: tuple[int, ...], prompt_tokens: int) -> int:
    """0 = base rates; k = prompt_tiers[k-1] (the highest `above` the prompt exceeds)."""
    level = 0
    for bound in bounds:
        if prompt_tokens > bound:
            level += 1
        else:
            break
    return level


class _PriceTable:
    """Builds the Price objects of one version."""

    def __init__(self, entry: ModelEntry, version: PriceVersion, rule: PeakRule | None,
                 cny_per_usd: Decimal | None) -> None:
        self.entry, self.version, self.rule, self.cny_per_usd = entry, version, rule, cny_per_usd

    def build(self) -> dict[tuple[int, bool, str], Price]:
        version = self.version
        levels = [resolve_rates(version.given(), version.ratios)]
        levels += [resolve_rates(tier.given(), version.ratios) for tier in version.prompt_tiers]
        periods = (False, True) if self.rule is not None else (False,)
        table: dict[tuple[int, bool, str], Price] = {}
        for level, rates in enumerate(levels):
            for off_peak in periods:
                period_rates = self._period(rates, off_peak)
                for tier in SERVICE_TIERS:
                    price = self._tier_price(period_rates, level, off_peak, tier)
                    if price is not None:
                        table[(level, off_peak, tier)] = price
        return table

    def _period(self, rates: Rates, off_peak: bool) -> Rates:
        spec = self.version.off_peak
        if not off_peak or spec is None:
            return rates
        if spec.factor is not None:  # the schema allows a factor only when given, never as unknown
            return _scaled(rates, spec.factor)
        return resolve_rates(spec.given(), self.version.ratios)

    def _tier_price(self, rates: Rates, level: int, off_peak: bool, tier: ServiceTierName) -> Price | None:
        notes = self._notes(level, off_peak)
        if tier == "standard":
            return self._price(rates, tier, notes, self.version.source, self.version.verified)
        spec = self.version.service_tiers.get(tier)
        if spec is None:
            return None
        source, verified = _tier_provenance(spec, self.version)
        notes.append(tier if not spec.note else f"{tier}: {spec.note}")
        if spec.factor is not None:  # the schema allows a factor only when given, never as unknown
            return self._price(_scaled(rates, spec.factor), tier, notes, source, verified)
        own = resolve_rates(spec.given(), self.version.ratios)  # an own table ignores peak and prompt tiers
        return self._price(own, tier, [notes[-1]], source, verified)

    def _notes(self, level: int, off_peak: bool) -> list[str]:
        notes = []
        if self.rule is not None:
            notes.append("off-peak" if off_peak else "peak")
        if level:
            notes.append(f"prompt > {self.version.prompt_tiers[level - 1].above} tokens")
        return notes

    def _price(self, rates: Rates, tier: str, notes: list[str], source: str, verified: bool) -> Price:
        usd, original, conversion = self._in_usd(rates)
        if conversion:
            notes = [*notes, conversion]
        start = self.version.effective_from
        return Price(
            input=usd["input"], cached_input=usd["cached_input"], cache_write=usd["cache_write"],
            output=usd["output"], cache_write_1h=usd["cache_write_1h"], currency=self.version.currency,
            original=original, effective_from=START_UNKNOWN if start is None else start.date(),
            effective_at=start, source=source, verified=verified, note="; ".join(notes),
            provider=self.entry.provider, model=self.entry.model, tier=tier,
            explicit_cached_input=_distinct(usd["explicit_cached_input"], usd["cached_input"]),
            region=self.version.region)

    def _in_usd(self, rates: Rates) -> tuple[dict[str, Decimal], Mapping | None, str]:
        if self.version.currency == "USD":
            return {name: UNKNOWN if (rate := rates[name]) is None else rate for name in RATE_FIELDS}, None, ""
        original = MappingProxyType({"currency": self.version.currency, "cny_per_usd": self.cny_per_usd,
                                     **{name: rates[name] for name in RATE_FIELDS}})
        if self.cny_per_usd is None:
            return {name: UNKNOWN for name in RATE_FIELDS}, original, "CNY price: set cny_per_usd to convert it"
        usd = {name: UNKNOWN if (rate := rates[name]) is None else _EXACT.divide(rate, self.cny_per_usd)
               for name in RATE_FIELDS}
        return usd, original, f"CNY at {self.cny_per_usd} per USD"


def _distinct(rate: Decimal, default: Decimal) -> Decimal | None:
    """A rate that only matters where it differs from its default (None = the default applies)."""
    if rate == default or (rate.is_nan() and default.is_nan()):
        return None
    return rate


def _tier_provenance(spec: ServiceTier, version: PriceVersion) -> tuple[str, bool]:
    """An own table carries its own source; a factor is only as sure as both the factor and the base."""
    verified = version.verified if spec.verified is None else spec.verified
    if spec.source is None:
        return version.source, verified
    if "factor" in spec.model_fields_set:
        return f"{version.source}; {spec.source}", version.verified and verified
    return spec.source, verified

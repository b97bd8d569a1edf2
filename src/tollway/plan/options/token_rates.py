"""Per-token rates for every hour of a representative week, from the catalog or from explicit prices.

Why hour by hour: some prices depend on when the request arrives (DeepSeek bills off-peak hours at
half the peak rate), so the workload's weekly shape decides what share of its tokens lands in each
price band. The catalog is asked once per hour of the week (Monday 00:00 UTC of the pricing date's week
first), for the standard and the batch tier; everything after that is exact Decimal arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, Sequence, TypeGuard

from tollway.plan.options.base import PER_MILLION, monthly_from_daily
from tollway.plan.scenario import ScenarioError, TokenPriceSource
from tollway.plan.workload import HOURS_PER_WEEK, Workload

ZERO = Decimal(0)
KINDS = ("uncached_input", "cached_input", "cache_write", "output")


class PriceLookup(Protocol):
    """The part of tollway.catalog.Catalog this module needs."""

    def price(self, provider: str, model: str, at: datetime, prompt_tokens: int = 0,
              tier: str = "standard") -> Any: ...


@dataclass(frozen=True)
class KindRates:
    """USD per single token of each kind."""

    uncached_input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal

    def times(self, factor: Decimal) -> "KindRates":
        return KindRates(*(getattr(self, kind) * factor for kind in KINDS))

    def plus(self, other: "KindRates") -> "KindRates":
        return KindRates(*(getattr(self, kind) + getattr(other, kind) for kind in KINDS))


ZERO_RATES = KindRates(ZERO, ZERO, ZERO, ZERO)


def daily_tokens(workload: Workload) -> KindRates:
    """Tokens of each kind in one day (reusing KindRates as a 4-vector of counts)."""
    return KindRates(workload.daily_uncached_input_tokens, workload.daily_cached_tokens,
                     workload.daily_cache_write_tokens, workload.daily_output_tokens)


def dot(tokens: KindRates, rates: KindRates) -> Decimal:
    return sum((getattr(tokens, kind) * getattr(rates, kind) for kind in KINDS), ZERO)


class TokenPricer:
    """Rates for each of the 168 hours of the week, batch share already blended in."""

    def __init__(self, hourly: Sequence[KindRates], description: str, notes: tuple[str, ...] = ()) -> None:
        self.hourly = tuple(hourly)
        self.description = description
        self.notes = notes
        # Most prices do not depend on the hour; then any traffic shape blends to the same rate.
        self._uniform = self.hourly[0] if all(rates == self.hourly[0] for rates in self.hourly) else None
        self._blends: dict[tuple[Decimal, ...], KindRates] = {}

    def blended(self, weights: tuple[Decimal, ...]) -> KindRates:
        """The week's average rate per kind when traffic follows the relative `weights`."""
        if self._uniform is not None:
            return self._uniform
        if weights not in self._blends:
            total = sum(weights, ZERO)
            self._blends[weights] = KindRates(*(
                sum((w * getattr(r, kind) for w, r in zip(weights, self.hourly, strict=True)), ZERO) / total
                for kind in KINDS))
        return self._blends[weights]

    def monthly_cost(self, workload: Workload, hour_fractions: Sequence[Decimal] | None = None) -> Decimal:
        """USD for a month of `workload`, or of only `hour_fractions[h]` of each hour's tokens."""
        return monthly_from_daily(self.daily_cost(workload, hour_fractions))

    def daily_cost(self, workload: Workload, hour_fractions: Sequence[Decimal] | None = None) -> Decimal:
        tokens = daily_tokens(workload)
        if hour_fractions is None:
            return dot(tokens, self.blended(workload.hour_weights))
        pairs = zip(workload.hour_weights, hour_fractions, strict=True)
        if self._uniform is not None:
            weighted = sum((w * f for w, f in pairs if f), ZERO)
            return dot(tokens, self._uniform) * weighted / workload.hour_total
        return sum((w * f * dot(tokens, rates) for (w, f), rates in zip(pairs, self.hourly, strict=True) if f),
                   ZERO) / workload.hour_total


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of the week containing `at`."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=midnight.weekday())


def build_token_pricer(source: TokenPriceSource, where: str, workload: Workload, catalog: PriceLookup | None,
                       at: datetime, batch_share: Decimal) -> TokenPricer:
    """Resolve a price source into hourly rates; `where` names the scenario field for error messages."""
    if source.prices is not None:
        return _explicit_pricer(source, batch_share)
    if catalog is None:
        raise ScenarioError(f"{where}: the price catalog is not available; give explicit prices: instead")
    if source.use_workload_mix:
        return _mix_pricer(source, where, workload, catalog, at, batch_share)
    rates, notes = _catalog_week(catalog, source, source.provider, source.model, where, workload, at, batch_share)
    return TokenPricer(rates, f"{source.provider}/{source.model} (catalog)", notes)


def _explicit_pricer(source: TokenPriceSource, batch_share: Decimal) -> TokenPricer:
    prices = source.prices
    assert prices is not None
    standard = KindRates(
        prices.input / PER_MILLION,
        (prices.cached_input if prices.cached_input is not None else prices.input) / PER_MILLION,
        (prices.cache_write if prices.cache_write is not None else prices.input) / PER_MILLION,
        prices.output / PER_MILLION,
    ).times(source.price_multiplier)
    discount = source.batch_discount or ZERO
    rates = _with_batch(standard, standard.times(1 - discount), batch_share)
    return TokenPricer(tuple([rates] * HOURS_PER_WEEK), "explicit prices")


def _mix_pricer(source: TokenPriceSource, where: str, workload: Workload, catalog: PriceLookup,
                at: datetime, batch_share: Decimal) -> TokenPricer:
    """Today's routing at catalog prices: each model's share of each token kind at its own rates."""
    if not workload.model_mix:
        raise ScenarioError(f"{where}: use_workload_mix needs a workload with a model mix (from --from-ledger)")
    totals = daily_tokens(workload)
    hourly = [ZERO_RATES] * HOURS_PER_WEEK
    notes: list[str] = []
    for share in workload.model_mix:
        part = daily_tokens(Workload(
            daily_input_tokens=share.daily_input_tokens, daily_output_tokens=share.daily_output_tokens,
            daily_cached_tokens=share.daily_cached_tokens, daily_cache_write_tokens=share.daily_cache_write_tokens))
        fractions = KindRates(*(_fraction(getattr(part, k), getattr(totals, k)) for k in KINDS))
        week, model_notes = _catalog_week(catalog, source, share.provider, share.model, where, workload, at,
                                          batch_share)
        notes.extend(model_notes)
        hourly = [acc.plus(KindRates(*(getattr(r, k) * getattr(fractions, k) for k in KINDS)))
                  for acc, r in zip(hourly, week, strict=True)]
    names = ", ".join(f"{s.provider}/{s.model}" for s in workload.model_mix)
    return TokenPricer(tuple(hourly), f"workload mix at catalog prices ({names})", tuple(dict.fromkeys(notes)))


def _fraction(part: Decimal, whole: Decimal) -> Decimal:
    return part / whole if whole else ZERO


def _catalog_week(catalog: PriceLookup, source: TokenPriceSource, provider: str | None, model: str | None,
                  where: str, workload: Workload, at: datetime,
                  batch_share: Decimal) -> tuple[tuple[KindRates, ...], tuple[str, ...]]:
    """Ask the catalog for each hour of the representative week, standard and batch tiers."""
    start = week_start(at)
    hourly: list[KindRates] = []
    notes: set[str] = set()
    for hour in range(HOURS_PER_WEEK):
        moment = start + timedelta(hours=hour)
        standard = _catalog_rates(catalog, provider, model, moment, workload.mean_prompt_tokens, "standard", where,
                                  notes)
        if standard is None:
            raise ScenarioError(f"{where}: model {provider}/{model} is not in the price catalog "
                                f"(or has no price in force on {moment.date()})")
        standard = standard.times(source.price_multiplier)
        batch = _batch_rates(catalog, source, provider, model, moment, workload, standard, batch_share, where, notes)
        hourly.append(_with_batch(standard, batch, batch_share))
    return tuple(hourly), tuple(sorted(notes))


def _batch_rates(catalog: PriceLookup, source: TokenPriceSource, provider: str | None, model: str | None,
                 moment: datetime, workload: Workload, standard: KindRates, batch_share: Decimal, where: str,
                 notes: set[str]) -> KindRates:
    """The batch price: the option's own discount if given, else the catalog's batch tier, else none."""
    if source.batch_discount is not None:
        return standard.times(1 - source.batch_discount)
    if batch_share == 0:
        return standard
    batch = _catalog_rates(catalog, provider, model, moment, workload.mean_prompt_tokens, "batch", where, notes)
    if batch is None:
        notes.add(f"{provider}/{model} has no batch price in the catalog: batchable share billed at standard")
        return standard
    return batch.times(source.price_multiplier)


def _catalog_rates(catalog: PriceLookup, provider: str | None, model: str | None, moment: datetime,
                   prompt_tokens: int, tier: str, where: str, notes: set[str]) -> KindRates | None:
    """One catalog price as per-token rates; unknown cache rates fall back to the input rate (an upper bound)."""
    price = catalog.price(provider or "", model or "", at=moment, prompt_tokens=prompt_tokens, tier=tier)
    if price is None:
        return None
    missing = [name for name in ("input", "output") if not _known(getattr(price, name, None))]
    if missing:
        raise ScenarioError(f"{where}: the catalog does not know the {' and '.join(missing)} price of "
                            f"{provider}/{model}; give explicit prices: instead")
    rates: dict[str, Decimal] = {}
    for name in ("cached_input", "cache_write"):
        value = getattr(price, name, None)
        if _known(value):
            rates[name] = value
        else:
            notes.add(f"{provider}/{model}: {name} price unknown in the catalog, billed at the input price")
            rates[name] = price.input
    return KindRates(price.input / PER_MILLION, rates["cached_input"] / PER_MILLION,
                     rates["cache_write"] / PER_MILLION, price.output / PER_MILLION)


def _known(rate: Decimal | None) -> TypeGuard[Decimal]:
    """The catalog marks a rate its sources lack as NaN (older shapes may use None)."""
    return rate is not None and not rate.is_nan()


def _with_batch(standard: KindRates, batch: KindRates, batch_share: Decimal) -> KindRates:
    return standard.times(1 - batch_share).plus(batch.times(batch_share))

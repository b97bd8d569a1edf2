"""Which price applies to a deployment's tokens at a given moment.

A deployment's own `price:` in the config wins (a negotiated rate, a self-hosted chargeback); otherwise
the catalog's price for (provider kind, upstream model) in force at request time, in the deployment's region
(its provider's `region:`, else what its base URL says; see catalog/regions.py); self-hosted servers with
neither cost nothing. Deployments with no known price are reported at start, not silently charged zero.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from tollway.catalog import Catalog, Price
from tollway.catalog.regions import region_of
from tollway.config import SELF_HOSTED_KINDS, PriceOverride

if TYPE_CHECKING:  # routing's deployment; only its attributes are read here
    from tollway.routing.table import RoutedDeployment

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MINUTE_US = 60_000_000
_LAST_US_OF_MINUTE = timedelta(microseconds=_MINUTE_US - 1)


def _override_price(override: PriceOverride) -> Price:
    return Price(input=override.input, cached_input=override.cached_input if override.cached_input is not None else override.input,
                 cache_write=override.cache_write if override.cache_write is not None else override.input,
                 output=override.output, currency="USD", original=None, effective_from=date.min,
                 source="tollway.yaml deployment price", verified=True, note="config override",
                 provider="", model="")


SELF_HOSTED_PRICE = Price(input=_ZERO, cached_input=_ZERO, cache_write=_ZERO, output=_ZERO, currency="USD",
                          original=None, effective_from=date.min, source="self-hosted", verified=True,
                          note="no token price")


class DeploymentPricer:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._overrides: dict[str, Price] = {}
        self._bounds: dict[str, tuple[int, ...]] = {}
        self._regions: dict[str, str | None] = {}
        self._minute: dict[tuple[str, int, int], Price] = {}
        self._minute_now = -1

    def price_at(self, dep: RoutedDeployment, micros: int, prompt_tokens: int = 0) -> Price | None:
        """`price(dep, at, prompt_tokens)` for a UTC time in microseconds since the epoch, the request path's
        way: a deployment's own price needs no time at all, and a catalog price is looked up once per
        (deployment, minute, prompt class), not per request.

        Exact, never stale: a prompt class is a range of prompt lengths that no tier bound or tier limit of
        any of the model's versions splits, and a minute's entry is kept only when the catalog gives the very
        same Price object at the minute's first and last microsecond. Peak windows are whole local minutes,
        and versions never come back, so the same object at both ends means the same price throughout; a
        version starting inside the minute gives two objects, and that minute is looked up per request.
        """
        override = self._overrides.get(dep.name)
        if override is not None:
            return override
        if dep.config.price is not None:
            return self.price(dep, _EPOCH, prompt_tokens)
        minute = micros // _MINUTE_US
        if minute != self._minute_now:
            self._minute.clear()
            self._minute_now = minute
        key = (dep.name, minute, bisect_left(self._prompt_bounds(dep), prompt_tokens))
        price = self._minute.get(key)
        if price is not None:
            return price
        start = _EPOCH + timedelta(microseconds=minute * _MINUTE_US)
        first = self.price(dep, start, prompt_tokens)
        if first is not None and self.price(dep, start + _LAST_US_OF_MINUTE, prompt_tokens) is first:
            self._minute[key] = first
            return first
        return self.price(dep, _EPOCH + timedelta(microseconds=micros), prompt_tokens)

    def _prompt_bounds(self, dep: RoutedDeployment) -> tuple[int, ...]:
        """Every prompt length at which any version of the deployment's model changes its price or refuses."""
        bounds = self._bounds.get(dep.name)
        if bounds is None:
            entry = self.catalog.entry(dep.kind, dep.upstream_model)
            found: set[int] = set()
            for version in entry.prices if entry is not None else ():
                found.update(tier.above for tier in version.prompt_tiers)
                found.update(spec.max_prompt_tokens for spec in version.service_tiers.values()
                             if spec.max_prompt_tokens is not None)
            bounds = self._bounds[dep.name] = tuple(sorted(found))
        return bounds

    def price(self, dep: RoutedDeployment, at: datetime, prompt_tokens: int = 0) -> Price | None:
        override = self._overrides.get(dep.name)
        if override is None and dep.config.price is not None:
            override = self._overrides[dep.name] = _override_price(dep.config.price)
        if override is not None:
            return override
        price = self.catalog.price(dep.kind, dep.upstream_model, at, prompt_tokens=prompt_tokens,
                                   region=self._region(dep))
        if price is None and dep.kind in SELF_HOSTED_KINDS:
            return SELF_HOSTED_PRICE
        return price

    def _region(self, dep: RoutedDeployment) -> str | None:
        """Worked out once per deployment (a base URL does not move between regions)."""
        if dep.name not in self._regions:
            self._regions[dep.name] = region_of(getattr(dep, "region", None), getattr(dep, "base_url", None))
        return self._regions[dep.name]

    def unpriced(self, deployments: list[RoutedDeployment], at: datetime) -> list[str]:
        """Deployments whose tokens could not be priced now: the operator must add a price."""
        names = []
        for dep in deployments:
            price = self.price(dep, at)
            if price is None:
                names.append(f"{dep.name}{self._region_hint(dep)}")
            elif price.unknown:
                names.append(f"{dep.name} (no {', '.join(price.unknown)} rate)")
        return names

    def _region_hint(self, dep: RoutedDeployment) -> str:
        """Why a model the catalog prices by region has no price here: which regions it knows."""
        entry = self.catalog.entry(dep.kind, dep.upstream_model)
        regions = sorted({v.region for v in entry.prices if v.region}) if entry is not None else []
        if not regions:
            return ""
        region = self._region(dep) or "not known"
        return f" (region {region}; priced in {', '.join(regions)}: set the provider's region:)"

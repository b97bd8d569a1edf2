"""Which price applies to a deployment's tokens at a given moment.

A deployment's own `price:` in the config wins (a negotiated rate, a self-hosted chargeback); otherwise
the catalog's price for (provider kind, upstream model) in force at request time; self-hosted servers with
neither cost nothing. Deployments with no known price are reported at start, not silently charged zero.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from tollway.catalog import Catalog, Price
from tollway.config import SELF_HOSTED_KINDS, PriceOverride
from tollway.routing.table import RoutedDeployment

_ZERO = Decimal(0)


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

    def price(self, dep: RoutedDeployment, at: datetime, prompt_tokens: int = 0) -> Price | None:
        override = self._overrides.get(dep.name)
        if override is None and dep.config.price is not None:
            override = self._overrides[dep.name] = _override_price(dep.config.price)
        if override is not None:
            return override
        price = self.catalog.price(dep.kind, dep.upstream_model, at, prompt_tokens=prompt_tokens)
        if price is None and dep.kind in SELF_HOSTED_KINDS:
            return SELF_HOSTED_PRICE
        return price

    def unpriced(self, deployments: list[RoutedDeployment], at: datetime) -> list[str]:
        """Deployments whose tokens could not be priced now: the operator must add a price."""
        names = []
        for dep in deployments:
            price = self.price(dep, at)
            if price is None or price.unknown:
                names.append(dep.name if price is None else f"{dep.name} (no {', '.join(price.unknown)} rate)")
        return names

"""Which rate prices a batch line, and the Price behind it.

A native line is priced at the catalog's `service_tiers.batch` rate; a scheduled line at whatever the
catalog says for the moment it is sent, which is the off-peak rate inside a provider's off-peak hours
(DeepSeek's) and the standard rate otherwise. The pricer (catalog/deployment_prices.py) prices the
standard tier only, so the batch tier is read from the catalog here, in the deployment's region as the
pricer would; a deployment with its own `price:` in the config has no batch rate.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tollway.batch.types import Rate
from tollway.catalog import Price
from tollway.catalog.regions import region_of

if TYPE_CHECKING:
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.routing.table import RoutedDeployment

OFF_PEAK_NOTE = "off-peak"  # the first note of a price from a version with peak hours (catalog/pricing.py)


def batch_tier_price(pricer: "DeploymentPricer", dep: "RoutedDeployment", at: datetime,
                     prompt_tokens: int = 0) -> Price | None:
    """The catalog's batch-tier price for the deployment at `at`, or None when it has none."""
    if dep.config.price is not None:
        return None
    return pricer.catalog.price(dep.kind, dep.upstream_model, at, prompt_tokens=prompt_tokens, tier="batch",
                                region=region_of(dep.region, dep.base_url))


def line_price(pricer: "DeploymentPricer", dep: "RoutedDeployment", at: datetime, prompt_tokens: int,
               rate: Rate) -> Price | None:
    """The price of a line sent at `at` at the rate its plan chose (batch tier, or the moment's own)."""
    if rate == "batch":
        return batch_tier_price(pricer, dep, at, prompt_tokens)
    return pricer.price(dep, at, prompt_tokens)


def rate_of(price: Price | None) -> Rate:
    """The rate a standard-tier price stands for: off-peak when the catalog marked it so."""
    if price is not None and price.note.split("; ", 1)[0] == OFF_PEAK_NOTE:
        return "off_peak"
    return "standard"

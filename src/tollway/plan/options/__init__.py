"""Deployment options, one module per kind, each bound to its prices for one workload."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Sequence

from tollway.plan.options.base import DAYS_PER_MONTH, HOURS_PER_MONTH, MonthlyCost, PricedOption, Sizing
from tollway.plan.options.dedicated import DedicatedPriced
from tollway.plan.options.per_token import PerTokenPriced
from tollway.plan.options.provisioned import ProvisionedPriced
from tollway.plan.options.self_hosted import SelfHostedPriced
from tollway.plan.options.token_rates import PriceLookup, TokenPricer, build_token_pricer
from tollway.plan.scenario import (
    DedicatedOption,
    Option,
    PerTokenOption,
    ProvisionedOption,
    SelfHostedOption,
    TokenPriceSource,
)
from tollway.plan.workload import Workload

__all__ = ["DAYS_PER_MONTH", "HOURS_PER_MONTH", "MonthlyCost", "PricedOption", "Sizing", "TokenPricer",
           "build_option", "build_options", "needs_catalog"]


def needs_catalog(specs: Sequence[Option]) -> bool:
    """Whether any option prices tokens from the catalog (so the catalog must be loaded)."""
    return any(source.prices is None for source in _price_sources(specs))


def _price_sources(specs: Sequence[Option]) -> list[TokenPriceSource]:
    sources: list[TokenPriceSource] = []
    for spec in specs:
        if isinstance(spec, PerTokenOption):
            sources.append(spec)
        elif isinstance(spec, ProvisionedOption) and spec.overflow is not None:
            sources.append(spec.overflow)
    return sources


def build_options(specs: Sequence[Option], workload: Workload, catalog: PriceLookup | None,
                  at: datetime) -> list[PricedOption]:
    """Bind every option to its prices; errors name the option's field path."""
    return [build_option(spec, f"options[{index}]", workload, catalog, at) for index, spec in enumerate(specs)]


def build_option(spec: Option, where: str, workload: Workload, catalog: PriceLookup | None,
                 at: datetime) -> PricedOption:
    if isinstance(spec, PerTokenOption):
        pricer = build_token_pricer(spec, where, workload, catalog, at, workload.batchable_share)
        return PerTokenPriced(spec, pricer)
    if isinstance(spec, ProvisionedOption):
        overflow = None
        if spec.overflow is not None:
            # Overflow is live traffic spilling past the reservation: billed at the standard tier.
            overflow = build_token_pricer(spec.overflow, f"{where}.overflow", workload, catalog, at, Decimal(0))
        return ProvisionedPriced(spec, overflow)
    if isinstance(spec, DedicatedOption):
        return DedicatedPriced(spec)
    if isinstance(spec, SelfHostedOption):
        return SelfHostedPriced(spec, where)
    raise TypeError(f"{where}: unknown option type {type(spec).__name__}")

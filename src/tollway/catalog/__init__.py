"""The price catalog: dated per-model prices (USD or CNY), time-of-day and prompt-length rules, service
tiers, and the model facts routing needs. Data lives in catalog/data/*.yaml; see docs/catalog.md."""

from tollway.catalog.errors import CatalogError
from tollway.catalog.pricing import START_UNKNOWN, UNKNOWN, Price
from tollway.catalog.schema import ModelEntry, PriceVersion
from tollway.catalog.store import Catalog

__all__ = ["Catalog", "CatalogError", "ModelEntry", "Price", "PriceVersion", "START_UNKNOWN", "UNKNOWN"]

"""Config sections routing owns: deployments and route groups (see docs/gateway.md for the reference)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from tollway.config_base import Strict as _Strict

CAPABILITIES = ("vision", "tools", "json", "reasoning", "embeddings", "completions")


class PriceOverride(_Strict):
    """Prices for one deployment, USD per million tokens, when the catalog has none or they differ."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(None, ge=0)
    cache_write: Decimal | None = Field(None, ge=0)


class Deployment(_Strict):
    provider: str
    model: str = Field(description="model name sent upstream")
    aliases: list[str] = Field(default_factory=list, description="public names served by this deployment alone")
    context_window: int = Field(8192, gt=0)
    max_output: int = Field(4096, gt=0)
    capabilities: list[str] = Field(default_factory=list)
    price: PriceOverride | None = None

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CAPABILITIES))
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; known: {', '.join(CAPABILITIES)}")
        return value


class RouteGroup(_Strict):
    deployments: list[str] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    strategy: Literal["priority"] = "priority"

"""The scenario file: a workload and the deployment options to price for it.

Every number typed here ends up inside a money figure, so each one is validated at the door and a bad
one is reported with the file, the field path (``options[2].unit_tpm``) and the offending value, rather
than surfacing later as a nonsense cost. YAML floats are read as Decimal straight from their text, so
``0.15`` is exactly fifteen cents and never 0.1499999.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

NonNegative = Annotated[Decimal, Field(ge=0)]
Positive = Annotated[Decimal, Field(gt=0)]
Share = Annotated[Decimal, Field(ge=0, le=1)]
OPTION_KINDS = ("per_token", "provisioned", "dedicated", "self_hosted")


class ScenarioError(ValueError):
    """A scenario (file, flags or ledger) that cannot be priced; the message names what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenPrices(_Strict):
    """Explicit USD per 1M tokens; cached input and cache writes default to the plain input price."""

    input: NonNegative
    output: NonNegative
    cached_input: NonNegative | None = None
    cache_write: NonNegative | None = None


class TokenPriceSource(_Strict):
    """Where per-token prices come from: a catalog model, explicit prices, or the workload's own model mix."""

    provider: str | None = None
    model: str | None = None
    prices: TokenPrices | None = None
    use_workload_mix: bool = False
    batch_discount: Share | None = None
    price_multiplier: Positive = Decimal(1)

    @model_validator(mode="after")
    def _one_source(self) -> "TokenPriceSource":
        named = self.provider is not None or self.model is not None
        if named and (self.provider is None or self.model is None):
            raise ValueError("give both 'provider' and 'model' to price from the catalog")
        sources = [named, self.prices is not None, self.use_workload_mix]
        if sum(sources) != 1:
            raise ValueError("give exactly one price source: provider+model, prices, or use_workload_mix: true")
        return self


class PerTokenOption(TokenPriceSource):
    """A per-token API; the batchable share of traffic is billed at the batch price."""

    kind: Literal["per_token"]
    name: str = Field(min_length=1)
    rate_limit_tpm: Positive | None = None


class ProvisionedOption(_Strict):
    """Provisioned throughput (PTU-style): reserved tokens per minute for a monthly fee, overflow per token."""

    kind: Literal["provisioned"]
    name: str = Field(min_length=1)
    reserved_tpm: Positive
    monthly_fee: NonNegative
    output_token_weight: Positive = Decimal(1)
    overflow: TokenPriceSource | None = None


class DedicatedOption(_Strict):
    """Dedicated units (Model-Unit-style): a flat monthly fee per unit, each good for `unit_tpm`."""

    kind: Literal["dedicated"]
    name: str = Field(min_length=1)
    unit_monthly_fee: NonNegative
    unit_tpm: Positive
    headroom: NonNegative = Decimal("0.2")
    output_token_weight: Positive = Decimal(1)
    min_units: int = Field(default=1, ge=1)
    max_units: int | None = Field(default=None, ge=1)


class GpuHourlyPrices(_Strict):
    """USD per GPU-hour by purchase model."""

    on_demand: NonNegative | None = None
    reserved: NonNegative | None = None
    spot: NonNegative | None = None


class BenchSource(_Strict):
    """A `tollway bench` JSON file and the target in it whose measured capacity is one replica's."""

    json_path: Path = Field(alias="json")
    target: str = Field(min_length=1)


class SelfHostedOption(_Strict):
    """Own (or rented) GPUs running a model server: replicas for the peak plus spares, power, people."""

    kind: Literal["self_hosted"]
    name: str = Field(min_length=1)
    gpu_hourly_usd: GpuHourlyPrices
    gpu_pricing: Literal["on_demand", "reserved", "spot"] = "on_demand"
    gpus_per_replica: int = Field(ge=1)
    replica_output_tokens_per_s: Positive | None = None
    replica_total_tokens_per_s: Positive | None = None
    bench: BenchSource | None = None
    spare_replicas: int = Field(default=1, ge=0)
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int | None = Field(default=None, ge=1)
    gpu_watts: NonNegative = Decimal(0)
    pue: Annotated[Decimal, Field(ge=1)] = Decimal(1)
    power_usd_per_kwh: NonNegative = Decimal(0)
    fte: NonNegative = Decimal(0)
    fte_annual_usd: NonNegative = Decimal(0)
    other_monthly_usd: NonNegative = Decimal(0)

    @model_validator(mode="after")
    def _priced(self) -> "SelfHostedOption":
        if getattr(self.gpu_hourly_usd, self.gpu_pricing) is None:
            raise ValueError(f"gpu_pricing is {self.gpu_pricing!r} but gpu_hourly_usd.{self.gpu_pricing} is not set")
        return self

    @property
    def gpu_hourly(self) -> Decimal:
        return getattr(self.gpu_hourly_usd, self.gpu_pricing)


Option = Annotated[
    Union[PerTokenOption, ProvisionedOption, DedicatedOption, SelfHostedOption],
    Field(discriminator="kind"),
]


class WorkloadSpec(_Strict):
    """Daily token volumes (input includes cached and cache-write tokens, as in the ledger) and their shape."""

    daily_input_tokens: NonNegative
    daily_output_tokens: NonNegative
    daily_cached_tokens: NonNegative = Decimal(0)
    daily_cache_write_tokens: NonNegative = Decimal(0)
    peak_to_average: Annotated[Decimal, Field(ge=1)] | None = None
    hourly_profile: list[NonNegative] | None = None
    growth_per_month: Annotated[Decimal, Field(gt=-1)] = Decimal(0)
    batchable_share: Share = Decimal(0)
    mean_prompt_tokens: int = Field(default=0, ge=0)

    @field_validator("hourly_profile")
    @classmethod
    def _profile_shape(cls, profile: list[Decimal] | None) -> list[Decimal] | None:
        if profile is not None:
            if len(profile) not in (24, 168):
                raise ValueError(f"has {len(profile)} values; give 24 (a day) or 168 (a week from Monday 00:00 UTC)")
            if sum(profile) <= 0:
                raise ValueError("sums to zero")
        return profile

    @model_validator(mode="after")
    def _consistent(self) -> "WorkloadSpec":
        if self.daily_cached_tokens + self.daily_cache_write_tokens > self.daily_input_tokens:
            raise ValueError("daily_cached_tokens + daily_cache_write_tokens exceed daily_input_tokens "
                             "(input counts every prompt token, cached ones included)")
        if self.daily_input_tokens + self.daily_output_tokens <= 0:
            raise ValueError("the workload has no tokens: daily_input_tokens + daily_output_tokens must be > 0")
        return self


class EconomicsSpec(_Strict):
    """How to look ahead: horizons, the discount rate, and where the 'projected' volume is read."""

    horizons_years: list[Annotated[int, Field(ge=1, le=30)]] = Field(default_factory=lambda: [1, 3, 5], min_length=1)
    discount_rate: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal("0.08")
    projection_months: int = Field(default=12, ge=0, le=360)
    max_volume_multiple: Positive | None = None
    sensitivity_step: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.2")
    pricing_at: datetime | date | None = None


class Scenario(_Strict):
    """A whole scenario file."""

    workload: WorkloadSpec | None = None
    options: list[Option] = Field(default_factory=list)
    economics: EconomicsSpec = Field(default_factory=EconomicsSpec)
    catalog_overrides: list[dict[str, Any]] = Field(default_factory=list)
    cny_per_usd: Positive | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> "Scenario":
        seen: set[str] = set()
        for index, option in enumerate(self.options):
            if option.name in seen:
                raise ValueError(f"options[{index}].name {option.name!r} is used twice; names must be unique")
            seen.add(option.name)
        return self


class _DecimalLoader(yaml.SafeLoader):
    """A YAML loader that reads floats as exact Decimals from their source text."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    if text.lower() in (".inf", "+.inf", "-.inf", ".nan"):
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a usable number", node.start_mark)
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario YAML file; every error names the file and the field."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file ({exc.strerror})") from exc
    try:
        data = yaml.load(text, Loader=_DecimalLoader) or {}
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the top level must be a mapping with workload:, options:, economics:")
    return parse_scenario(data, origin=str(path))


def parse_scenario(data: dict[str, Any], origin: str = "scenario") -> Scenario:
    """Validate an already-parsed scenario mapping."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, origin)) from None


def format_validation_error(exc: ValidationError, origin: str, prefix: str = "") -> str:
    """One line per problem: `origin: field.path: message (got value)`; `prefix` roots the field path."""
    lines = []
    for error in exc.errors():
        where = ".".join(part for part in (prefix, field_path(error["loc"])) if part)
        value = error.get("input")
        shown = error["type"] != "missing" and not isinstance(value, dict) and len(repr(value)) <= 200
        got = f" (got {value!r})" if shown else ""
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {where or '(top level)'}: {message}{got}")
    return "\n".join(lines)


def field_path(loc: tuple[Any, ...]) -> str:
    """('options', 1, 'dedicated', 'unit_tpm') -> 'options[1].unit_tpm' (the union's tag is dropped)."""
    path = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in OPTION_KINDS:
            pass
        else:
            path += f".{part}" if path else str(part)
        previous = part
    return path

"""The catalog's data format: what one model entry and one dated price version may say.

Built-in files (catalog/data/*.yaml) and the user's `catalog:` overrides share this schema, so a user
entry can say anything a built-in entry can. Prices are Decimal per million tokens in the version's own
currency; a rate the sources do not give is written ``unknown`` and stays unknown (cost computation
refuses it) instead of silently becoming 0.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

CURRENCIES = ("USD", "CNY")
ServiceTierName = Literal["standard", "batch", "priority", "flex"]
SERVICE_TIERS: tuple[ServiceTierName, ...] = ("standard", "batch", "priority", "flex")
CAPABILITIES = ("vision", "tools", "json", "reasoning", "embeddings", "completions")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RATE_FIELDS = ("input", "cached_input", "explicit_cached_input", "cache_write", "cache_write_1h", "output")
WILDCARD_MODEL = "*"

_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _parse_rate(value: object) -> Decimal | None:
    """A price or ratio: a non-negative decimal, or the word `unknown` (returned as None)."""
    if isinstance(value, str) and value.strip().lower() == "unknown":
        return None
    if value is None:
        raise ValueError("null is not a price: write a number, or `unknown` if the sources do not give one")
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"{value!r} is not a number (write a decimal such as \"0.30\", or unknown)")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number (write a decimal such as \"0.30\", or unknown)") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if number < 0:
        raise ValueError(f"must not be negative (got {value})")
    return number


def _parse_moment(value: object) -> datetime | None:
    """A date (00:00 UTC that day) or a date-time; naive date-times are UTC. None = start not known."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return _parse_moment(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (2026-08-16) or date-time (2026-08-16T16:00:00Z)")


Rate = Annotated[Decimal | None, BeforeValidator(_parse_rate)]
Moment = Annotated[datetime | None, BeforeValidator(_parse_moment)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ratios(_Strict):
    """Rates derived from the input rate where a rate set does not give them (e.g. Qwen: hit = 20%)."""

    cached_input: Rate = None
    explicit_cached_input: Rate = None
    cache_write: Rate = None
    cache_write_1h: Rate = None


class RateSet(_Strict):
    """Per-million-token rates. Absent cache rates are derived (see PriceVersion.ratios); `unknown` stays unknown."""

    input: Rate = None
    cached_input: Rate = None
    explicit_cached_input: Rate = None
    cache_write: Rate = None
    cache_write_1h: Rate = None
    output: Rate = None

    def given(self) -> dict[str, Decimal | None]:
        """The rates this set states explicitly (None = stated as unknown)."""
        return {name: getattr(self, name) for name in RATE_FIELDS if name in self.model_fields_set}


class PeakHours(_Strict):
    """When the peak (base) rates apply; every other moment is off-peak (DeepSeek since 2026-08-16)."""

    timezone: str
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    windows: list[str] = Field(min_length=1, description="HH:MM-HH:MM local time, end exclusive")
    calendar: str | None = Field(None, description="holiday calendar whose dates are off-peak all day")
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, value: list[str]) -> list[str]:
        for window in value:
            match = _WINDOW.match(window.strip())
            if not match:
                raise ValueError(f"{window!r} is not a window like \"09:00-12:00\"")
            start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
            if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (start_h, start_m) >= (end_h, end_m):
                raise ValueError(f"{window!r} is not a window of increasing times within one day")
        return value


class OffPeak(RateSet):
    """Off-peak rates: either a factor applied to every peak rate, or explicit rates."""

    factor: Rate = None

    @model_validator(mode="after")
    def _factor_or_rates(self) -> "OffPeak":
        if ("factor" in self.model_fields_set) == bool(self.given()):
            raise ValueError("give either factor (e.g. \"0.5\") or explicit rates, not both or neither")
        if "factor" in self.model_fields_set and self.factor is None:
            raise ValueError("factor cannot be unknown")
        if self.given() and not {"input", "output"} <= set(self.given()):
            raise ValueError("explicit off-peak rates need at least input and output")
        return self


class PromptTier(RateSet):
    """Rates for the whole request when its prompt is longer than `above` tokens (Qwen tiers, long context)."""

    above: int = Field(gt=0, description="applies when prompt_tokens > above")

    @model_validator(mode="after")
    def _needs_input_and_output(self) -> "PromptTier":
        missing = [name for name in ("input", "output") if name not in self.model_fields_set]
        if missing:
            raise ValueError(f"a prompt tier needs {' and '.join(missing)} (write unknown if not known)")
        return self


class ServiceTier(RateSet):
    """A non-standard service tier: a factor on the standard rates (batch, flex) or its own table (priority)."""

    factor: Rate = None
    max_prompt_tokens: int | None = Field(None, gt=0, description="longer prompts are not served on this tier")
    source: str | None = None
    verified: bool | None = None
    note: str = ""

    @model_validator(mode="after")
    def _factor_or_table(self) -> "ServiceTier":
        has_factor = "factor" in self.model_fields_set
        if has_factor and self.given():
            raise ValueError("give either factor or explicit rates, not both")
        if has_factor and self.factor is None:
            raise ValueError("factor cannot be unknown")
        if not has_factor and not {"input", "output"} <= set(self.given()):
            raise ValueError("give a factor (e.g. \"0.5\") or at least input and output rates")
        return self


class PriceVersion(RateSet):
    """One dated price of one model: in force from `effective_from` until the next version starts."""

    effective_from: Moment = Field(description="date or date-time; null = start not known (first version only)")
    region: str | None = Field(None, description="the provider region this price is for (e.g. ap-southeast-1); "
                                                 "null = every region")
    currency: Literal["USD", "CNY"] = "USD"
    ratios: Ratios = Ratios()
    peak_hours: PeakHours | None = None
    off_peak: OffPeak | None = None
    prompt_tiers: list[PromptTier] = Field(default_factory=list)
    service_tiers: dict[Literal["batch", "priority", "flex"], ServiceTier] = Field(default_factory=dict)
    source: str = Field(min_length=1)
    verified: bool
    note: str = ""

    @field_validator("region")
    @classmethod
    def _plain_region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError(f"{value!r} is not a region name (lower-case letters, digits and -, e.g. cn-beijing)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "PriceVersion":
        missing = [name for name in ("input", "output") if name not in self.model_fields_set]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required (write unknown if the sources do not give it)")
        if (self.peak_hours is None) != (self.off_peak is None):
            raise ValueError("peak_hours and off_peak go together: give both or neither")
        if self.off_peak is not None and self.off_peak.given() and self.prompt_tiers:
            raise ValueError("with prompt_tiers, off_peak must be a factor (explicit off-peak rates are ambiguous)")
        bounds = [tier.above for tier in self.prompt_tiers]
        if bounds != sorted(set(bounds)):
            raise ValueError(f"prompt_tiers must have increasing, distinct `above` values (got {bounds})")
        return self


class ModelEntry(_Strict):
    """One model of one provider: its dated prices and what routing needs to know about it."""

    provider: str = Field(description="provider kind: deepseek, qwen, kimi, glm, openai, anthropic, vllm, ...")
    model: str = Field(description="upstream model name, or * for every model of a self-hosted provider")
    aliases: list[str] = Field(default_factory=list)
    context_window: int | None = Field(None, gt=0)
    max_output: int | None = Field(None, gt=0)
    capabilities: list[Literal["vision", "tools", "json", "reasoning", "embeddings", "completions"]] = Field(
        default_factory=list)
    strong_in: list[str] = Field(default_factory=list, description="e.g. zh, code")
    note: str = ""
    prices: list[PriceVersion] = Field(min_length=1)

    @field_validator("provider", "model")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value != WILDCARD_MODEL and not _NAME.match(value):
            raise ValueError(f"{value!r} is not a plain name (letters, digits, . _ - : / @ +)")
        return value

    @field_validator("aliases")
    @classmethod
    def _plain_aliases(cls, value: list[str]) -> list[str]:
        bad = [alias for alias in value if not _NAME.match(alias)]
        if bad:
            raise ValueError(f"aliases {bad} are not plain names")
        return value

    @model_validator(mode="after")
    def _dated_once(self) -> "ModelEntry":
        for region in {version.region for version in self.prices}:
            starts = [version.effective_from for version in self.prices if version.region == region]
            where = "" if region is None else f" of region {region}"
            undated = [index for index, version in enumerate(self.prices)
                       if version.region == region and version.effective_from is None]
            if len(undated) > 1:
                both = " and ".join(f"prices[{index}]" for index in undated)
                raise ValueError(f"only one price version{where} may have an unknown (null) effective_from; {both} do")
            dated = [start for start in starts if start is not None]
            if len(dated) != len(set(dated)):
                raise ValueError(f"two price versions{where} have the same effective_from; each version needs its "
                                 "own start")
        return self


class HolidayCalendar(_Strict):
    """Dates on which time-of-day pricing treats the whole day as off-peak (e.g. China's statutory holidays)."""

    holidays: list[date] = Field(default_factory=list)
    source: str = ""
    verified: bool | None = None
    note: str = ""


class CalendarAddition(_Strict):
    """A `catalog:` item that adds holiday dates to a named calendar instead of defining a model."""

    calendar: str = Field(min_length=1)
    holidays: list[date] = Field(min_length=1)


class ProviderFile(_Strict):
    """One catalog file: a provider's models (built-in data/<provider>.yaml, or a user file)."""

    provider: str
    note: str = ""
    models: list[dict] = Field(default_factory=list)


class CalendarFile(_Strict):
    """The holiday calendars file (built-in data/calendars.yaml, or a user file)."""

    calendars: dict[str, HolidayCalendar]

"""Config sections admission owns: virtual keys, teams, rate limits, budgets and where shared state lives.

They are plain reviewed data, like the rest of tollway.yaml: an unknown key or a bad value stops the
start with its key path. See docs/budgets.md for the reference and the guarantees they buy.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from tollway.accounting.budget_entries import BudgetEntry, BudgetEntryError, checked, window_name, with_plain
from tollway.core.config_base import Strict
from tollway.core.redact import redact_url


class RateLimit(Strict):
    """Requests and tokens per rolling minute; None means no limit on that measure."""

    rpm: int | None = Field(None, ge=1, description="requests per rolling 60 s")
    tpm: int | None = Field(None, ge=1, description="prompt + completion tokens per rolling 60 s")

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None


MAX_BUDGET_USD = Decimal("9007199")  # what a Redis counter of nano-dollars compares exactly (see nano_usd.py)


class BudgetEntrySetting(Strict):
    """One `{window, limit_usd}` entry as YAML gives it (see budget_entries.py)."""

    window: str = Field(description="hour, day, week or month (calendar, UTC)")
    limit_usd: Decimal = Field(gt=0, le=MAX_BUDGET_USD)
    model: str = Field("", description="count only requests served by this route group")
    per_user: bool = Field(False, description="a separate budget for each end user (the request's `user`)")

    @field_validator("window")
    @classmethod
    def _known_window(cls, value: str) -> str:
        try:
            return window_name(value, "window")
        except BudgetEntryError as exc:
            raise ValueError(str(exc).removeprefix("window: ")) from None

    def entry(self) -> BudgetEntry:
        return BudgetEntry(self.window, self.limit_usd, self.model, self.per_user)


def entries_of(settings: list[BudgetEntrySetting], daily: Decimal | None = None,
               monthly: Decimal | None = None) -> tuple[BudgetEntry, ...]:
    """The entries of a config list, with the older `daily_usd`/`monthly_usd` as plain day/month entries."""
    entries = tuple(s.entry() for s in settings)
    for window, limit in (("day", daily), ("month", monthly)):
        if limit is not None:
            entries = with_plain(entries, window, limit)
    return entries


class TeamSettings(Strict):
    """A team's shared limits: every key with `team: NAME` counts against them as well as its own."""

    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    daily_usd: Decimal | None = Field(None, gt=0, le=MAX_BUDGET_USD)
    monthly_usd: Decimal | None = Field(None, gt=0, le=MAX_BUDGET_USD)
    budgets: list[BudgetEntrySetting] = Field(default_factory=list, description="{window, limit_usd} entries")

    def entries(self) -> tuple[BudgetEntry, ...]:
        return entries_of(self.budgets, self.daily_usd, self.monthly_usd)


class KeysSettings(Strict):
    required: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: once any virtual key exists, every request needs one (or a server.api_keys_env key)")
    refresh_ms: int = Field(250, ge=10, le=5000, description="how often each replica checks the key store for changes")
    path: Path | None = Field(None, description="SQLite file for keys when there is no database_url; default: the ledger file")


class LimitsSettings(Strict):
    deployments: dict[str, RateLimit] = Field(
        default_factory=dict, description="pace calls to a deployment below the provider's own limits")


class BudgetSettings(Strict):
    soft_threshold: Decimal = Field(Decimal("0.8"), gt=0, le=1, description="share of a budget that raises an alert")
    brownout: dict[str, str] = Field(
        default_factory=dict, description="route group -> cheaper route group used once a budget passes soft_threshold")
    org: list[BudgetEntrySetting] = Field(
        default_factory=list, description="budgets every request counts against, whatever its key or team")
    daily_reset_hour_utc: int = Field(0, ge=0, le=23)
    monthly_reset_day: int = Field(1, ge=1, le=28)
    reservation_timeout_s: float | None = Field(
        None, gt=0, description="a hold not settled in this time is released (a gateway died); default: deadline + 60 s")
    tokens_per_image: int = Field(1600, ge=0, description="prompt tokens held for each image part")


def check_redis_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"redis_url {redact_url(url)!r} must start with redis://, rediss:// or unix://")
    return url


def check_database_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"database_url {redact_url(url)!r} must start with postgresql:// (SQLite is the default "
                         "without one)")
    return url


def check_admission_references(config) -> None:
    """Names in the admission sections must exist elsewhere in the config (called by Config's validator)."""
    for name in config.limits.deployments:
        if name not in config.deployments:
            raise ValueError(f"limits.deployments.{name}: no deployment named {name!r} "
                             f"(deployments: {', '.join(config.deployments)})")
    groups = set(config.route_groups) | {d for d, dep in config.deployments.items() if dep.aliases}
    for where, entries in [("budgets.org", config.budgets.org),
                           *((f"teams.{name}.budgets", team.budgets) for name, team in config.teams.items())]:
        checked([entry.entry() for entry in entries], where, groups)  # a ValueError naming the entry
    for source, target in config.budgets.brownout.items():
        for where, name in (("", source), (f".{source}", target)):
            if name not in groups:
                raise ValueError(f"budgets.brownout{where}: no route group named {name!r} "
                                 f"(route groups: {', '.join(sorted(groups))})")

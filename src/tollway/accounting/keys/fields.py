"""Checking the fields of a virtual key as people type them (CLI flags) or send them (admin API JSON).

Every error names the field and the bad value, and says what would be accepted.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from tollway.accounting.budget_entries import BudgetEntryError, entries_from_json
from tollway.accounting.keys.records import UNSET, KeySpec
from tollway.core.money import MAX_NANO, NANO_PER_USD


class KeyFieldError(ValueError):
    """A key field with a bad value; the message names both."""


def money(value: object, field: str) -> Decimal | None:
    """A positive USD amount (string or number); None/"" / "none" clear a budget."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "-")):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise KeyFieldError(f"{field}: expected a USD amount like \"5\" or \"12.50\", got {value!r}")
    try:
        amount = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise KeyFieldError(f"{field}: expected a USD amount like \"5\" or \"12.50\", got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise KeyFieldError(f"{field}: must be more than 0, got {value!r}")
    if amount * NANO_PER_USD > MAX_NANO:
        raise KeyFieldError(f"{field}: ${amount} is more than a budget can count exactly (${MAX_NANO // NANO_PER_USD:,})")
    return amount


def budget_pair(text: str, field: str = "--budget-usd") -> tuple[Decimal | None, Decimal | None]:
    """"DAILY/MONTHLY" (either side may be empty): "5/100", "5/", "/100"."""
    daily, sep, monthly = text.partition("/")
    if not sep:
        raise KeyFieldError(f"{field}: expected DAILY/MONTHLY, e.g. 5/100 (daily only: 5/, monthly only: /100), "
                            f"got {text!r}")
    return money(daily, f"{field} (daily)"), money(monthly, f"{field} (monthly)")


def count(value: object, field: str) -> int | None:
    """A positive whole number of requests or tokens; None clears the limit."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("", "none", "-"):
        return None
    try:
        # int() itself judges what it takes (str, int, ...); what it refuses raises, caught below
        number = int(cast(Any, value)) if not isinstance(value, bool) and not isinstance(value, float) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < 1:
        raise KeyFieldError(f"{field}: expected a whole number of at least 1, got {value!r}")
    return number


def names(value: object, field: str) -> tuple[str, ...]:
    """A list of names, from a JSON list or a comma-separated string."""
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise KeyFieldError(f"{field}: expected a list of names, got {value!r}")
    return tuple(v.strip() for v in value)


_JSON_FIELDS = ("name", "team", "daily_usd", "monthly_usd", "budgets", "rpm", "tpm", "default_max_tokens", "models",
                "residency", "expires_at")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def grace_period(text: str) -> timedelta:
    """A duration like 90s, 30m, 24h or 7d."""
    value = text.strip()
    if len(value) < 2 or value[-1] not in _DURATION_UNITS or not value[:-1].isdigit():
        raise KeyFieldError(f"{text!r} is not a duration: use e.g. 90s, 30m, 24h, 7d")
    return timedelta(seconds=int(value[:-1]) * _DURATION_UNITS[value[-1]])


def expiry(value: object, field: str) -> str:
    """An expiry as stored: ISO-8601 UTC text (a time without a zone is taken as UTC); "none", "" or null
    clear it (stored as "")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return ""
    if not isinstance(value, str):
        raise KeyFieldError(f"{field}: expected an ISO date/time like 2027-01-31T18:00:00Z, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise KeyFieldError(f"{field}: {value!r} is not an ISO date/time like 2027-01-31T18:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def spec_from_json(body: object, models: Collection[str] | None = None) -> KeySpec:
    """A KeySpec from an admin API body; only the fields present change (null clears a limit). `budgets`
    replaces the key's whole list; a per-model entry must name one of `models` (when given)."""
    if not isinstance(body, dict):
        raise KeyFieldError(f"body: expected a JSON object with any of {', '.join(_JSON_FIELDS)}")
    unknown = sorted(set(body) - set(_JSON_FIELDS))
    if unknown:
        raise KeyFieldError(f"{unknown[0]}: unknown field; known: {', '.join(_JSON_FIELDS)}")
    for field in ("name", "team"):
        if field in body and not isinstance(body[field], str):
            raise KeyFieldError(f"{field}: expected a string, got {body[field]!r}")
    try:
        budgets = entries_from_json(body["budgets"], "budgets", models) if "budgets" in body else None
    except BudgetEntryError as exc:
        raise KeyFieldError(str(exc)) from None
    return KeySpec(
        name=body.get("name"), team=body.get("team"), budgets=budgets,
        daily_usd=money(body["daily_usd"], "daily_usd") if "daily_usd" in body else UNSET,
        monthly_usd=money(body["monthly_usd"], "monthly_usd") if "monthly_usd" in body else UNSET,
        rpm=count(body["rpm"], "rpm") if "rpm" in body else UNSET,
        tpm=count(body["tpm"], "tpm") if "tpm" in body else UNSET,
        default_max_tokens=count(body["default_max_tokens"], "default_max_tokens")
        if "default_max_tokens" in body else UNSET,
        models=names(body["models"], "models") if "models" in body else None,
        residency=names(body["residency"], "residency") if "residency" in body else None,
        expires_at=expiry(body["expires_at"], "expires_at") if "expires_at" in body else None,
    )

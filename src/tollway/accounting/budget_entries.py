"""Budgets as data: a `{window, limit_usd}` entry, optionally for one model and per end user.

The org (config), each team (config or the team store) and each key (key store) carry a list of these.
An entry with `model` counts only requests served by that route group; an entry with `per_user` is a
separate budget for each end user (the request's `user` field) of its owner. Entries come from people
(CLI text, admin API JSON, YAML), so every error names the entry and the field and says what is
accepted; a list is checked whole before anything is stored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tollway.accounting.periods import Window
from tollway.core.money import MAX_NANO, NANO_PER_USD

# entry window -> the period rule it counts over; the adjectives are accepted as synonyms
PERIOD_OF: dict[str, Window] = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}
_SYNONYMS: dict[str, str] = {period: window for window, period in PERIOD_OF.items()}
ENTRY_FIELDS = ("window", "limit_usd", "model", "per_user")


class BudgetEntryError(ValueError):
    """A budget entry with a bad field; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class BudgetEntry:
    window: str             # "hour" | "day" | "week" | "month"
    limit_usd: Decimal
    model: str = ""         # "" counts every model; else one route group
    per_user: bool = False  # a budget for each end user of the owner

    @property
    def period(self) -> Window:
        return PERIOD_OF[self.window]

    @property
    def plain(self) -> bool:
        return not self.model and not self.per_user

    def public(self) -> dict:
        data: dict = {"window": self.window, "limit_usd": str(self.limit_usd)}
        if self.model:
            data["model"] = self.model
        if self.per_user:
            data["per_user"] = True
        return data

    def text(self) -> str:
        """The CLI form: [user:]WINDOW=USD[@MODEL]."""
        return f"{'user:' if self.per_user else ''}{self.window}={self.limit_usd}{'@' + self.model if self.model else ''}"


def window_name(value: object, field: str) -> str:
    if isinstance(value, str):
        name = value.strip().lower()
        name = _SYNONYMS.get(name, name)
        if name in PERIOD_OF:
            return name
    raise BudgetEntryError(f"{field}: unknown window {value!r}; use hour, day, week or month "
                           "(calendar periods in UTC)")


def limit_amount(value: object, field: str) -> Decimal:
    """A positive USD amount a Redis counter of nano-dollars can compare exactly."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise BudgetEntryError(f"{field}: expected a USD amount like \"5\" or \"12.50\", got {value!r}")
    try:
        amount = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise BudgetEntryError(f"{field}: expected a USD amount like \"5\" or \"12.50\", got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise BudgetEntryError(f"{field}: a budget must be more than $0, got {value!r}")
    if amount * NANO_PER_USD > MAX_NANO:
        raise BudgetEntryError(f"{field}: ${amount} is more than a budget can count exactly "
                               f"(${MAX_NANO // NANO_PER_USD:,})")
    return amount


def entry_from_json(value: object, field: str) -> BudgetEntry:
    if not isinstance(value, dict):
        raise BudgetEntryError(f"{field}: expected an object like {{\"window\": \"day\", \"limit_usd\": \"5\"}}, "
                               f"got {value!r}")
    unknown = sorted(set(value) - set(ENTRY_FIELDS))
    if unknown:
        raise BudgetEntryError(f"{field}.{unknown[0]}: unknown field; known: {', '.join(ENTRY_FIELDS)}")
    if "window" not in value or "limit_usd" not in value:
        raise BudgetEntryError(f"{field}: needs both window and limit_usd")
    model = value.get("model") or ""
    if not isinstance(model, str):
        raise BudgetEntryError(f"{field}.model: expected a model name, got {model!r}")
    per_user = value.get("per_user", False)
    if not isinstance(per_user, bool):
        raise BudgetEntryError(f"{field}.per_user: expected true or false, got {per_user!r}")
    return BudgetEntry(window_name(value["window"], f"{field}.window"),
                       limit_amount(value["limit_usd"], f"{field}.limit_usd"), model.strip(), per_user)


def entries_from_json(value: object, field: str = "budgets",
                      models: Collection[str] | None = None) -> tuple[BudgetEntry, ...]:
    """A whole list of entries (null: none), checked together: one entry per window, model and scope."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BudgetEntryError(f"{field}: expected a list of {{\"window\", \"limit_usd\"}} objects, got {value!r}")
    return checked([entry_from_json(item, f"{field}[{i}]") for i, item in enumerate(value)], field, models)


def entry_from_text(text: str, field: str = "budget") -> BudgetEntry:
    """`[user:]WINDOW=USD[@MODEL]`, e.g. `day=5`, `week=20@chat`, `user:day=0.50`."""
    rest = text.strip()
    per_user = rest.startswith("user:")
    if per_user:
        rest = rest[len("user:"):]
    window, sep, amount = rest.partition("=")
    if not sep:
        raise BudgetEntryError(f"{field} {text!r}: expected [user:]WINDOW=USD[@MODEL], e.g. day=5, week=20@chat, "
                               "user:day=0.5")
    amount, _, model = amount.partition("@")
    return BudgetEntry(window_name(window, f"{field} {text!r}"), limit_amount(amount, f"{field} {text!r}"),
                       model.strip(), per_user)


def entries_from_text(texts: Iterable[str], field: str = "budget",
                      models: Collection[str] | None = None) -> tuple[BudgetEntry, ...]:
    """Entries as typed on the command line; a single `none` means no budgets at all."""
    texts = [t for t in texts if t.strip()]
    if len(texts) == 1 and texts[0].strip().lower() == "none":
        return ()
    return checked([entry_from_text(t, field) for t in texts], field, models)


def checked(entries: list[BudgetEntry], field: str, models: Collection[str] | None) -> tuple[BudgetEntry, ...]:
    """`entries` once no two cover the same window, model and scope, and every model is known."""
    seen: set[tuple[str, str, bool]] = set()
    for index, entry in enumerate(entries):
        if models is not None and entry.model and entry.model not in models:
            raise BudgetEntryError(f"{field}[{index}].model: no model {entry.model!r} in the config "
                                   f"(models: {', '.join(sorted(models)) or 'none'})")
        slot = (entry.window, entry.model, entry.per_user)
        if slot in seen:
            raise BudgetEntryError(f"{field}[{index}]: a second {entry.text().split('=')[0]} budget"
                                   f"{' for ' + entry.model if entry.model else ''}; give each window one limit")
        seen.add(slot)
    return tuple(entries)


def plain_limit(entries: Iterable[BudgetEntry], window: str) -> Decimal | None:
    """The limit of the entry for every model and all users together over `window`, if any."""
    return next((e.limit_usd for e in entries if e.plain and e.window == window), None)


def with_plain(entries: Iterable[BudgetEntry], window: str, limit: Decimal | None) -> tuple[BudgetEntry, ...]:
    """`entries` with the plain `window` entry set to `limit` (None removes it): what daily_usd and
    monthly_usd mean."""
    kept = [e for e in entries if not (e.plain and e.window == window)]
    if limit is not None:
        kept.append(BudgetEntry(window, limit))
    order = list(PERIOD_OF)
    return tuple(sorted(kept, key=lambda e: (e.per_user, e.model, order.index(e.window))))


def to_json(entries: Iterable[BudgetEntry]) -> list[dict]:
    return [e.public() for e in entries]


def from_stored(data: list[dict] | None) -> tuple[BudgetEntry, ...]:
    """Entries as a store wrote them (already checked when they were written)."""
    if not data:
        return ()
    return tuple(BudgetEntry(d["window"], Decimal(str(d["limit_usd"])), d.get("model", ""),
                             bool(d.get("per_user", False))) for d in data)

"""Budget use as the observer shows it, from whatever `Admission.budget_status()` returns.

Admission owns budgets; the observer only displays them. `budget_status()` may be missing (the default
admission has no budgets), sync or async, and may return a list of mappings or objects, or a mapping of
name -> entry. Each entry is read for a name (`name`, `id`, `key_id`, `scope`), the spend (`spent_usd`,
`used_usd`, `spend_usd`) and the limit (`limit_usd`, `budget_usd`), as exact decimals.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger("tollway.observe")

_NAME_FIELDS = ("name", "id", "key_id", "budget", "team")
_SPENT_FIELDS = ("spent_usd", "used_usd", "spend_usd", "spent")
_LIMIT_FIELDS = ("limit_usd", "budget_usd", "max_usd", "limit")


@dataclass(frozen=True, slots=True)
class BudgetUse:
    name: str
    spent_usd: Decimal
    limit_usd: Decimal | None

    @property
    def ratio(self) -> Decimal | None:
        if not self.limit_usd:
            return None
        return self.spent_usd / self.limit_usd

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {"name": self.name, "spent_usd": str(self.spent_usd),
                "limit_usd": None if self.limit_usd is None else str(self.limit_usd),
                "used": None if ratio is None else float(ratio)}


async def fetch_budgets(admission: object) -> list[BudgetUse] | None:
    """Current budget use, or None when admission has no budgets to report."""
    status = getattr(admission, "budget_status", None)
    if status is None:
        return None
    try:
        result = status()
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # a display must not take the gateway down
        log.warning("admission.budget_status() failed: %s", type(exc).__name__)
        return None
    return parse_budgets(result)


def parse_budgets(result: Mapping[Any, object] | Iterable[object] | None) -> list[BudgetUse]:
    if result is None:
        return []
    if isinstance(result, Mapping):
        items = [(str(name), entry) for name, entry in result.items()]
    else:
        items = [("", entry) for entry in result]
    budgets = []
    for default_name, entry in items:
        fields = _as_mapping(entry)
        spent = _decimal(_first(fields, _SPENT_FIELDS))
        if spent is None:
            continue
        name = _first(fields, _NAME_FIELDS) or default_name
        scope = fields.get("scope")
        label = f"{scope}:{name}" if scope and name and scope != name else str(name or scope or "?")
        if fields.get("window"):
            label += f" ({fields['window']})"
        budgets.append(BudgetUse(label, spent, _decimal(_first(fields, _LIMIT_FIELDS))))
    return budgets


def _as_mapping(entry: object) -> Mapping[str, Any]:
    if isinstance(entry, Mapping):
        return entry
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        return {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    return getattr(entry, "__dict__", {})


def _first(fields: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if fields.get(name) not in (None, ""):
            return fields[name]
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, float):
        return None if value is None else Decimal(str(value))
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None

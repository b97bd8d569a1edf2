"""Budget brownouts: past a budget's soft threshold, alert once and serve the key or team from cheaper
route groups (`budgets.brownout`) until the budget's period resets.

Kept apart from admission's accounting because it is policy on top of the counters' answers: admission
reports what a request's admission saw, and this decides what that means for the next requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable

from tollway.accounting.budgets import BudgetLine, Budgets
from tollway.accounting.counters.base import BudgetCheck, Decision
from tollway.accounting.settings import BudgetSettings
from tollway.core.money import exact_text

if TYPE_CHECKING:
    from tollway.accounting.tickets import Key

NO_MOVES: Mapping[str, str] = MappingProxyType({})


class Brownouts:
    def __init__(self, settings: BudgetSettings, budgets: Budgets, emit: Callable[[dict], None]) -> None:
        self._settings = settings
        self._budgets = budgets
        self._emit = emit
        self.configured = bool(settings.brownout)
        self._moves: Mapping[str, str] = MappingProxyType(dict(settings.brownout))
        self._active: dict[str, tuple[str, datetime]] = {}   # "key:<id>" / "team:<name>" -> (reason, until)

    def moves(self, key: "Key") -> Mapping[str, str]:
        """The route groups `key` is moved to now (group -> cheaper group): `budgets.brownout` while the key
        or its team is in brownout, else nothing. Known before the request names its group, so admission
        answers it with the caller, in one step before routing."""
        if not self._active:  # the usual case: no brownout anywhere
            return NO_MOVES
        now = datetime.now(timezone.utc)
        for owner in (f"key:{key.id}", f"team:{key.team}" if key.team else ""):
            entry = self._active.get(owner)
            if entry is not None and entry[1] > now:
                return self._moves
        return NO_MOVES

    def start(self, key_id: str, reason: str) -> None:
        """Serve this key from the cheaper route groups until the end of the UTC day."""
        until = self._budgets.clock.current("daily").resets_at
        self._active[f"key:{key_id}"] = (reason, until)
        self._emit({"event": "brownout", "scope": "key", "id": key_id, "reason": reason, "until": until.isoformat()})

    def watch(self, lines: list[BudgetLine], checks: list[BudgetCheck], decision: Decision) -> None:
        """Past a soft threshold: an alert (once per budget period, from the replica that crossed it) and,
        with `budgets.brownout` configured, cheaper route groups for the key or team (on every replica)."""
        settings = self._settings
        for index, (line, check, state) in enumerate(zip(lines, checks, decision.budgets)):
            if not check.soft_nano or state.spent_nano + state.reserved_nano < check.soft_nano:
                continue
            owner = f"{line.scope}:{line.owner}"
            if index in decision.soft_crossed:
                self._emit({"event": "budget_soft_threshold", "scope": line.scope, "id": line.owner,
                            "window": line.window, "limit_usd": str(line.limit_usd),
                            "used_usd": exact_text(state.spent_nano + state.reserved_nano),
                            "threshold": str(settings.soft_threshold)})
            current = self._active.get(owner)
            if line.scope not in ("key", "team"):
                continue  # brownouts move a key or a team; the org's and end users' budgets only alert
            if self.configured and (current is None or current[1] <= datetime.now(timezone.utc)):
                until = self._budgets.resets_at(line)
                self._active[owner] = (f"{line.window} budget past {settings.soft_threshold:%}", until)
                self._emit({"event": "brownout", "scope": line.scope, "id": line.owner,
                            "reason": self._active[owner][0], "until": until.isoformat()})

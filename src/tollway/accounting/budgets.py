"""USD budgets per key and per team over daily and monthly windows: which apply, and how they read.

A budget's counters are named "<scope>:<owner>:<window>:<period id>", e.g. "key:ab12:daily:2026-11-22",
so a new period starts from zero by itself and old ones expire in Redis a week after they end.
What a key's admission checks (names, limits, expiries) is prepared once per key version and period;
per request only the hold is filled in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tollway.accounting.counters.base import BudgetCheck, BudgetState, filled
from tollway.accounting.keys.records import KeyRecord
from tollway.accounting.periods import WINDOWS, PeriodClock, Window
from tollway.accounting.settings import BudgetSettings, TeamSettings
from tollway.core.money import exact_text, to_nano

KEEP_AFTER_RESET = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget that applies to a request: a key's or a team's, daily or monthly."""

    scope: str          # "key" | "team"
    owner: str          # key id or team name
    window: Window
    limit_usd: Decimal

    @property
    def limit_nano(self) -> int:
        return to_nano(self.limit_usd)

    def counter_name(self, period_id: str) -> str:
        return f"{self.scope}:{self.owner}:{self.window}:{period_id}"


class Budgets:
    def __init__(self, settings: BudgetSettings, teams: dict[str, TeamSettings]) -> None:
        self.settings = settings
        self.teams = teams
        self.clock = PeriodClock(settings.daily_reset_hour_utc, settings.monthly_reset_day)
        self._lines: dict[str, tuple[int, list[BudgetLine]]] = {}  # key id -> (record seq, its lines)
        self._limits: dict[Decimal, tuple[int, int]] = {}         # limit -> (nano, soft nano)
        # key id -> (record seq, valid until unix s, (name, limit, soft, expire_at_s) per line)
        self._prepared: dict[str, tuple[int, float, list[tuple[str, int, int, int]]]] = {}

    def lines(self, record: KeyRecord | None) -> list[BudgetLine]:
        """The budgets a key's requests count against (cached until the key record changes)."""
        if record is None:
            return []
        cached = self._lines.get(record.id)
        if cached is not None and cached[0] == record.seq:
            return cached[1]
        found = [BudgetLine("key", record.id, window, limit) for window, limit in
                 zip(WINDOWS, (record.daily_usd, record.monthly_usd)) if limit is not None]
        team = self.teams.get(record.team) if record.team else None
        if team is not None:
            found += [BudgetLine("team", record.team, window, limit) for window, limit in
                      zip(WINDOWS, (team.daily_usd, team.monthly_usd)) if limit is not None]
        self._lines[record.id] = (record.seq, found)
        return found

    def team_lines(self) -> list[BudgetLine]:
        return [BudgetLine("team", name, window, limit) for name, team in self.teams.items()
                for window, limit in zip(WINDOWS, (team.daily_usd, team.monthly_usd)) if limit is not None]

    def key_checks(self, record: KeyRecord | None, hold_nano: int) -> list[BudgetCheck]:
        """checks(lines(record), hold_nano) now, from what was prepared for the key's current periods."""
        if record is None:
            return []
        return [filled(BudgetCheck, (name, limit, soft, hold_nano, expire))
                for name, limit, soft, expire in self.key_budgets(record, time.time())[1]]

    def key_budgets(self, record: KeyRecord, now_s: float) -> tuple[float, list[tuple[str, int, int, int]]]:
        """(valid until unix s, (counter name, limit, soft, expire_at_s) per budget) of the key's budgets in
        the periods in force at `now_s`, prepared once per key version and period."""
        prepared = self._prepared.get(record.id)
        if prepared is None or prepared[0] != record.seq or now_s >= prepared[1]:
            prepared = self._prepare(record)
        return prepared[1], prepared[2]

    def _prepare(self, record: KeyRecord) -> tuple[int, float, list[tuple[str, int, int, int]]]:
        """The key's checks for the periods in force now, valid until the first of them resets."""
        now = datetime.now(timezone.utc)
        lines = self.lines(record)
        checks = [(c.name, c.limit_nano, c.soft_nano, c.expire_at_s) for c in self.checks(lines, 0, now)]
        resets = [self.clock.current(line.window, now).resets_at.timestamp() for line in lines]
        prepared = self._prepared[record.id] = (record.seq, min(resets, default=now.timestamp() + 60), checks)
        return prepared

    def checks(self, lines: list[BudgetLine], hold_nano: int, now: datetime | None = None) -> list[BudgetCheck]:
        now = now or datetime.now(timezone.utc)
        checks = []
        for line in lines:
            period = self.clock.current(line.window, now)
            limit, soft = self._nano_limits(line.limit_usd)
            checks.append(BudgetCheck(line.counter_name(period.id), limit, soft, hold_nano,
                                      int((period.resets_at + KEEP_AFTER_RESET).timestamp())))
        return checks

    def _nano_limits(self, limit_usd: Decimal) -> tuple[int, int]:
        found = self._limits.get(limit_usd)
        if found is None:
            limit = to_nano(limit_usd)
            found = self._limits[limit_usd] = (limit, self.soft_nano(limit))
        return found

    def soft_nano(self, limit_nano: int) -> int:
        return int(limit_nano * self.settings.soft_threshold)

    def counter_name(self, line: BudgetLine, now: datetime | None = None) -> str:
        return line.counter_name(self.clock.current(line.window, now).id)

    def resets_at(self, line: BudgetLine, now: datetime | None = None) -> datetime:
        return self.clock.current(line.window, now).resets_at

    def status(self, line: BudgetLine, state: BudgetState | None, name: str = "") -> dict:
        """One budget as budget_status() and the admin API report it (exact decimal strings)."""
        period = self.clock.current(line.window)
        state = state or BudgetState(0, 0)
        limit = to_nano(line.limit_usd)
        return {"scope": line.scope, "id": line.owner, "name": name or line.owner, "window": line.window,
                "period": period.id, "limit_usd": exact_text(limit), "spent_usd": exact_text(state.spent_nano),
                "reserved_usd": exact_text(state.reserved_nano),
                "remaining_usd": exact_text(max(0, limit - state.spent_nano - state.reserved_nano)),
                "soft_threshold": str(self.settings.soft_threshold),
                "over_soft_threshold": state.spent_nano + state.reserved_nano >= self.soft_nano(limit),
                "resets_at": period.resets_at.isoformat().replace("+00:00", "Z"),
                "spent_nano": state.spent_nano, "reserved_nano": state.reserved_nano}

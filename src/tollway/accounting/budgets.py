"""USD budgets along the hierarchy org -> team -> key -> end user: which apply to a request, and how they read.

Every level carries a list of `{window, limit_usd}` entries (budget_entries.py): the org's under
`budgets.org`, a team's in the config or the team store, a key's in the key store. An entry with a
`model` counts only requests served by that route group; one with `per_user` is a budget of its own for
each end user (the request's `user`, "" when absent) of its owner. A request is checked against every
line that applies, in one admission step: all fit and all are held, or none.

A budget's counters are named "<scope>:<owner>[@<model>]:<window>:<period id>", e.g.
"key:ab12:daily:2026-11-22", "team:ml@chat:weekly:2026-W48", "user:key:ab12/alice:daily:2026-11-22",
so a new period starts from zero by itself and old ones expire in Redis a week after they end.
What a key's admission checks (names, limits, expiries) is prepared once per key version, period, and
(only for keys whose lines depend on them) route group and end user; per request only the hold is
filled in.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tollway.accounting.budget_entries import BudgetEntry
from tollway.accounting.counters.base import BudgetCheck, BudgetState, filled
from tollway.accounting.keys.records import KeyRecord
from tollway.accounting.periods import PeriodClock, Window
from tollway.accounting.settings import BudgetSettings, entries_of
from tollway.core.money import exact_text, to_nano

KEEP_AFTER_RESET = timedelta(days=7)
MAX_PREPARED = 10_000   # prepared (key, group, end user) variants kept; the map starts over when full
Prepared = tuple[float, list["BudgetLine"], list[tuple[str, int, int, int]]]  # (valid until, lines, checks)
PLAIN = ("", "")        # the variant of a request no per-model or per-user entry singles out
NO_BODY: Mapping = {}


def end_user(body: Mapping) -> str:
    """The request's `user` for per-user budgets: "" when absent (requests naming no user share one budget)."""
    user = body.get("user")
    return user if user.__class__ is str else ""


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget that applies to a request: the org's, a team's, a key's or an end user's."""

    scope: str          # "org" | "team" | "key" | "user"
    owner: str          # "org", team name, key id; for "user": "<org|team:NAME|key:ID>/<end user>"
    window: Window
    limit_usd: Decimal
    model: str = ""     # "" for every model

    @property
    def limit_nano(self) -> int:
        return to_nano(self.limit_usd)

    def counter_name(self, period_id: str) -> str:
        model = f"@{self.model}" if self.model else ""
        return f"{self.scope}:{self.owner}{model}:{self.window}:{period_id}"

    def who(self, key_names: dict[str, str]) -> str:
        """The budget's owner in a refusal: "team 'ml'", "key 'ci-bot' (ab12)", "end user 'alice' of the org"."""
        if self.scope == "user":
            level, _, user = self.owner.partition("/")
            return f"end user '{user}' of {_level_words(level, key_names)}{self._for_model()}"
        return f"{_level_words(f'{self.scope}:{self.owner}', key_names)}{self._for_model()}"

    def _for_model(self) -> str:
        return f" for model '{self.model}'" if self.model else ""


def _level_words(level: str, key_names: dict[str, str]) -> str:
    scope, _, owner = level.partition(":")
    if scope == "key":
        return f"key '{key_names.get(owner, owner)}' ({owner})"
    if scope == "team":
        return f"team '{owner}'"
    return "the org"


class _KeyPlan:
    """A key's budget entries along the hierarchy (as (scope, owner, entry)), for one key version."""

    __slots__ = ("seq", "entries", "models", "per_user", "plain")

    def __init__(self, seq: int, entries: list[tuple[str, str, BudgetEntry]]) -> None:
        self.seq = seq
        self.entries = entries
        self.models = {e.model for _, _, e in entries if e.model}
        self.per_user = any(e.per_user for _, _, e in entries)
        self.plain: Prepared | None = None   # the PLAIN variant (every variant of a key whose lines name neither)

    def variant(self, group: str, body: Mapping) -> tuple[str, str]:
        return (group if group in self.models else "", end_user(body) if self.per_user else "")


class Budgets:
    def __init__(self, settings: BudgetSettings, teams: dict) -> None:
        self.settings = settings
        self.teams = teams                  # name -> TeamSettings or TeamRecord (anything with .entries())
        self.clock = PeriodClock(settings.daily_reset_hour_utc, settings.monthly_reset_day)
        self.org = entries_of(settings.org)
        self._plans: dict[str, _KeyPlan] = {}                           # key id ("" none) -> its plan
        self._prepared: dict[tuple[str, str, str], tuple[int, Prepared]] = {}  # (id, group, user) -> (seq, ...)
        self._limits: dict[Decimal, tuple[int, int]] = {}               # limit -> (nano, soft nano)

    @property
    def org_configured(self) -> bool:
        return bool(self.org)

    def forget(self) -> None:
        """Drop what was prepared: a team's entries changed."""
        self._plans.clear()
        self._prepared.clear()

    def variant(self, record: KeyRecord | None, group: str, body: Mapping) -> tuple[str, str] | None:
        """What, besides the key's version and the periods, its budgets for a request on route group `group`
        with `body` depend on: None for a key whose lines name no model and no end user (the usual case)."""
        plan = self._plan(record)
        if not plan.models and not plan.per_user:
            return None
        return plan.variant(group, body)

    def lines(self, record: KeyRecord | None, group: str = "", body: Mapping = NO_BODY) -> list[BudgetLine]:
        """The budgets a request on `record` for route group `group` with `body` counts against, org first,
        in the order of key_checks."""
        return self._prepared_for(record, group, body, time.time())[1]

    def key_checks(self, record: KeyRecord | None, hold_nano: int, group: str = "",
                   body: Mapping = NO_BODY) -> list[BudgetCheck]:
        """checks(lines(...), hold_nano) now, from what was prepared for the current periods."""
        prepared = self._prepared_for(record, group, body, time.time())
        return [filled(BudgetCheck, (name, limit, soft, hold_nano, expire)) for name, limit, soft, expire in prepared[2]]

    def key_budgets(self, record: KeyRecord | None, now_s: float,
                    variant: tuple[str, str] = PLAIN) -> tuple[float, list[tuple[str, int, int, int]]]:
        """(valid until unix s, (counter name, limit, soft, expire_at_s) per budget) of the budgets of a
        request of `variant` (see variant()) in the periods in force at `now_s`."""
        prepared = self._prepared_variant(self._plan(record), record, variant, now_s)
        return prepared[0], prepared[2]

    def status_lines(self, record: KeyRecord) -> list[BudgetLine]:
        """The key's own lines (every model, no end users): what the budget status lists for it."""
        return [self._line(scope, owner, entry) for scope, owner, entry in self._plan(record).entries
                if scope == "key" and not entry.per_user]

    def shared_lines(self) -> list[BudgetLine]:
        """The org's and every team's lines (every model, no end users), for the budget status."""
        found = [self._line("org", "org", e) for e in self.org if not e.per_user]
        for name, team in self.teams.items():
            found += [self._line("team", name, e) for e in team.entries() if not e.per_user]
        return found

    def checks(self, lines: list[BudgetLine], hold_nano: int, now: datetime | None = None) -> list[BudgetCheck]:
        now = now or datetime.now(timezone.utc)
        checks = []
        for line in lines:
            period = self.clock.current(line.window, now)
            limit, soft = self._nano_limits(line.limit_usd)
            checks.append(BudgetCheck(line.counter_name(period.id), limit, soft, hold_nano,
                                      int((period.resets_at + KEEP_AFTER_RESET).timestamp())))
        return checks

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
                "model": line.model or None,
                "period": period.id, "limit_usd": exact_text(limit), "spent_usd": exact_text(state.spent_nano),
                "reserved_usd": exact_text(state.reserved_nano),
                "remaining_usd": exact_text(max(0, limit - state.spent_nano - state.reserved_nano)),
                "soft_threshold": str(self.settings.soft_threshold),
                "over_soft_threshold": state.spent_nano + state.reserved_nano >= self.soft_nano(limit),
                "resets_at": period.resets_at.isoformat().replace("+00:00", "Z"),
                "spent_nano": state.spent_nano, "reserved_nano": state.reserved_nano}

    # -- preparation -----------------------------------------------------------------------------------

    def _plan(self, record: KeyRecord | None) -> _KeyPlan:
        key_id, seq = (record.id, record.seq) if record is not None else ("", -1)
        plan = self._plans.get(key_id)
        if plan is None or plan.seq != seq:
            entries = [("org", "org", e) for e in self.org]
            if record is not None:
                team = self.teams.get(record.team) if record.team else None
                if team is not None:
                    entries += [("team", record.team, e) for e in team.entries()]
                entries += [("key", record.id, e) for e in record.budgets]
            plan = self._plans[key_id] = _KeyPlan(seq, entries)
        return plan

    def _prepared_for(self, record: KeyRecord | None, group: str, body: Mapping, now_s: float) -> Prepared:
        plan = self._plan(record)
        variant = plan.variant(group, body) if plan.models or plan.per_user else PLAIN
        return self._prepared_variant(plan, record, variant, now_s)

    def _prepared_variant(self, plan: _KeyPlan, record: KeyRecord | None, variant: tuple[str, str],
                          now_s: float) -> Prepared:
        if variant == PLAIN:
            if plan.plain is None or now_s >= plan.plain[0]:
                plan.plain = self._prepare(plan, "", "")
            return plan.plain
        slot = (record.id if record is not None else "", *variant)
        found = self._prepared.get(slot)
        if found is not None and found[0] == plan.seq and now_s < found[1][0]:
            return found[1]
        if len(self._prepared) >= MAX_PREPARED:
            self._prepared.clear()
        prepared = self._prepare(plan, *variant)
        self._prepared[slot] = (plan.seq, prepared)
        return prepared

    def _prepare(self, plan: _KeyPlan, group: str, user: str) -> Prepared:
        """The lines and checks for the periods in force now, valid until the first of them resets."""
        now = datetime.now(timezone.utc)
        lines = []
        for scope, owner, entry in plan.entries:
            if entry.model and entry.model != group:
                continue
            if entry.per_user:
                level = "org" if scope == "org" else f"{scope}:{owner}"
                lines.append(self._line("user", f"{level}/{user}", entry))
            else:
                lines.append(self._line(scope, owner, entry))
        checks = [(c.name, c.limit_nano, c.soft_nano, c.expire_at_s) for c in self.checks(lines, 0, now)]
        resets = [self.clock.current(line.window, now).resets_at.timestamp() for line in lines]
        return (min(resets, default=now.timestamp() + 60), lines, checks)

    @staticmethod
    def _line(scope: str, owner: str, entry: BudgetEntry) -> BudgetLine:
        return BudgetLine(scope, owner, entry.period, entry.limit_usd, entry.model)

    def _nano_limits(self, limit_usd: Decimal) -> tuple[int, int]:
        found = self._limits.get(limit_usd)
        if found is None:
            limit = to_nano(limit_usd)
            found = self._limits[limit_usd] = (limit, self.soft_nano(limit))
        return found

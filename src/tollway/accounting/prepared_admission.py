"""A key's admission compiled against the in-process counters: what reserve and settle touch, found once.

Without Redis, admitting a request means: look up each of the key's rate windows and budgets by name,
check them, add to them. The names, limits and the objects they name change only when the key record
changes, a budget period ends, or the counters drop idle entries, so they are resolved once into a
PreparedKey holding the RateWindow and BudgetTally objects themselves; per request, reserve then checks and
adds in a loop over them (LocalCounters.admit_prepared), and settle corrects the same objects.

A PreparedKey is valid while the key's version and budget periods are those it was built for and the
counters' `generation` (bumped whenever they forget an entry) is the one it saw. Anything unusual (a
refusal, a stale preparation, a settle that does not match its hold) takes the generic path of
counters.py, which answers exactly as before: the prepared path only skips the lookups.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tollway.accounting.budgets import MAX_PREPARED, NO_BODY, PLAIN, Budgets
from tollway.accounting.counters.base import BudgetCheck, RateCheck, filled
from tollway.accounting.counters.local import LocalCounters
from tollway.accounting.counters.state import BudgetTally, RateWindow
from tollway.accounting.keys.records import KeyRecord
from tollway.accounting.limits import RateLimits, deployment_subject
from tollway.ledger.schema import LedgerRow

if TYPE_CHECKING:
    from tollway.accounting.tickets import Ticket

log = logging.getLogger("tollway.admission")


class PreparedKey:
    """One key version's windows and budgets (for one set of budget periods) in one LocalCounters."""

    __slots__ = ("budget_checks", "budgets", "counters", "generation", "held_budgets", "rate_checks", "rates", "seq",
                 "valid_until")

    def __init__(self, seq: int, valid_until: float, counters: LocalCounters,
                 limits: list[tuple[str, int | None, int | None]],
                 budgets: list[tuple[str, int, int, int]]) -> None:
        self.seq = seq
        self.valid_until = valid_until       # unix s: the first of its budget periods ends then
        self.counters = counters
        self.generation = counters.generation
        self.rates: list[tuple[RateWindow, int | None, int | None]] = \
            [(counters.window(subject), rpm, tpm) for subject, rpm, tpm in limits]
        self.budgets: list[tuple[BudgetTally, int, int]] = \
            [(counters.budget(name, expire), limit, soft) for name, limit, soft, expire in budgets]
        self.held_budgets = [budget for budget, _, _ in self.budgets]
        # what the generic path needs of them (a fallback settle, threshold alerts): names, not amounts
        self.rate_checks = [filled(RateCheck, (subject, rpm, tpm, 0)) for subject, rpm, tpm in limits]
        self.budget_checks = [filled(BudgetCheck, (name, limit, soft, 0, expire))
                              for name, limit, soft, expire in budgets]

    @property
    def empty(self) -> bool:
        return not (self.rates or self.budgets)

    def current(self, seq: int, now_s: float, counters: LocalCounters) -> bool:
        return seq == self.seq and now_s < self.valid_until and counters is self.counters \
            and counters.generation == self.generation


class PacingTable(dict):
    """deployment name -> (its window or None when unlimited, rpm, tpm), filled on first use; emptied (by
    Admission) whenever the counters it points into forget entries."""

    def __init__(self, counters: LocalCounters, limits: dict) -> None:
        super().__init__()
        self.counters = counters
        self.generation = counters.generation
        self.limits = limits

    def __missing__(self, name: str) -> tuple[RateWindow | None, int | None, int | None]:
        limit = self.limits.get(name)
        entry: tuple[RateWindow | None, int | None, int | None]
        if limit is None or (limit.rpm is None and limit.tpm is None):
            entry = self[name] = (None, None, None)
        else:
            entry = self[name] = (self.counters.window(deployment_subject(name)), limit.rpm, limit.tpm)
        return entry

    def current(self, counters: LocalCounters) -> bool:
        return counters is self.counters and counters.generation == self.generation


class InProcessAdmission:
    """The PreparedKeys (per key id, "" for requests without a key; per key, group and end user for keys
    with such budgets) and the pacing table, kept current."""

    def __init__(self, limits: RateLimits, budgets: Budgets) -> None:
        self.limits = limits
        self.budgets = budgets
        self._keys: dict[str | tuple[str, str, str], PreparedKey] = {}
        self._pacing: PacingTable | None = None

    def key(self, record: KeyRecord | None, local: LocalCounters, group: str = "",
            body: Mapping = NO_BODY) -> PreparedKey:
        """The key's current PreparedKey in `local` for a request on route group `group` with `body`, built
        again when the key, a budget period or `local`'s entries changed. A key with per-model or per-user
        budgets has one per group and end user it saw (bounded like Budgets' preparations), looked up only
        after the key's own slot came up empty, so other keys pay nothing for them."""
        now_s = time.time()
        key_id, seq = (record.id, record.seq) if record is not None else ("", -1)
        prepared = self._keys.get(key_id)
        if prepared is not None and prepared.current(seq, now_s, local):
            return prepared
        budgets = self.budgets
        variant = budgets.variant(record, group, body)
        slot: str | tuple[str, str, str] = key_id
        if variant is not None:
            slot = (key_id, *variant)
            prepared = self._keys.get(slot)
            if prepared is not None and prepared.current(seq, now_s, local):
                return prepared
        limits = self.limits.key_limits(record) if record is not None else []
        until, checks = budgets.key_budgets(record, now_s, variant or PLAIN)
        if len(self._keys) >= MAX_PREPARED:
            self._keys.clear()
        prepared = self._keys[slot] = PreparedKey(seq, until, local, limits, checks)
        return prepared

    def forget(self) -> None:
        """Drop every PreparedKey: what a key's team counts against changed."""
        self._keys.clear()

    def pacing(self, order: list, local: LocalCounters) -> PacingTable | None:
        """The pacing windows for `order` when any of its deployments is paced; None when pacing does not apply."""
        deployments = self.limits.deployments
        if not deployments:
            return None
        for candidate in order:
            if candidate.name in deployments:
                break
        else:
            return None
        table = self._pacing
        if table is None or not table.current(local):
            table = self._pacing = PacingTable(local, deployments)
        return table

    def settle(self, ticket: Ticket, row: LedgerRow, local: LocalCounters, cost: int) -> bool:
        """Settle a ticket admit_prepared charged, on the objects it charged, when nothing has moved since
        and it was served where pacing charged it (the usual case); False: settle it the generic way. `cost` is the
        request's exact cost in nano-dollars."""
        prepared = ticket.prepared
        if prepared is None or prepared.counters is not local or prepared.generation != local.generation:
            return False
        served, paced = row.deployment, ticket.paced
        window = None
        if paced:
            table = self._pacing
            if served != paced or table is None or not table.current(local):
                return False
            window = table[paced][0]
            if window is None:
                return False
        elif served and self.limits.is_paced(served):
            return False  # served by a paced deployment pacing did not charge: the generic settle adds it
        if prepared.budgets and cost > ticket.held_nano:
            warn_overspent(ticket, row)
        local.settle_prepared(prepared, window, ticket.id, row.prompt_tokens + row.completion_tokens, cost)
        return True


def warn_overspent(ticket: Ticket, row: LedgerRow) -> None:
    log.warning("request %s cost $%s, more than the $%s held for it: the upstream reported more tokens "
                "than the request allowed", row.id, row.cost_usd, ticket.held_usd)

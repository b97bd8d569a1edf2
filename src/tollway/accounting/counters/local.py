"""Rate-limit and budget counters in this process: the default on one machine, and the fallback when
Redis is unreachable and `on_redis_failure: open`.

The semantics are those of counters.py, implemented with plain Python structures. `admit` and `settle`
never await, so on the event loop each runs atomically, like a Redis script.

Memory follows the requests in flight, not the traffic (the soak once showed it growing with the last
six minutes of requests):
- a rate window keeps one slot per millisecond that admitted something ([ms, requests, tokens], the
  exact granularity of the Redis scripts' clock), so it holds at most 60,000 slots whatever the rate;
  the tickets settle may still correct are kept only until they are settled (or leave the window);
- a budget hold lives in one entry per ticket that settling removes; the expiry heap drops settled
  tickets once they are most of it.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Callable

from tollway.accounting.counters.base import (
    BUDGET,
    OK,
    PACING,
    REVOKED,
    WINDOW_MS,
    AdmitRequest,
    BudgetState,
    Decision,
    RateCheck,
    Settlement,
)
from tollway.accounting.counters.state import BudgetTally, HeldBudgets, RateWindow, take_hold

if TYPE_CHECKING:
    from tollway.accounting.prepared_admission import PacingTable, PreparedKey


class LocalCounters:
    name = "local"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rates: dict[str, RateWindow] = {}
        self._budgets: dict[str, BudgetTally] = {}
        self._held: dict[str, HeldBudgets] = {}
        self._expiries: list[tuple[int, str]] = []  # heap of (expires at ms, ticket); settled ones dropped lazily
        self._revoked: set[str] = set()
        self._admissions = 0
        self.generation = 0  # bumped whenever an entry is forgotten: prepared references to it are stale

    def window(self, subject: str) -> RateWindow:
        """A subject's rate window (created empty), for preparing references to it."""
        return self._rates.get(subject) or self._rates.setdefault(subject, RateWindow())

    def budget(self, name: str, expire_at_s: int) -> BudgetTally:
        """A budget's counters (created at zero), for preparing references to it."""
        return self._budgets.get(name) or self._new_budget(name, expire_at_s)

    async def admit(self, request: AdmitRequest) -> Decision:
        return self.admit_now(request)

    def _admission_clock(self) -> int:
        """Now in ms, after the housekeeping every admission owes: expired holds released, and every
        1,024th admission old periods and idle windows forgotten."""
        now = int(self._clock() * 1000)
        self._admissions += 1
        if not self._admissions & 1023:
            self._forget_old(now)
        if self._expiries and self._expiries[0][0] <= now:
            self._release_expired(now)
        return now

    def admit_now(self, request: AdmitRequest) -> Decision:
        now = self._admission_clock()
        if request.key_id and request.key_id in self._revoked:
            return Decision(REVOKED)
        windows: list[RateWindow] = []
        for check in request.rates:  # the hot loop: _window and fits, inlined
            window = self._rates.get(check.subject)
            if window is None:
                window = self._rates[check.subject] = RateWindow()
            elif window.slots and window.slots[0][0] <= now - WINDOW_MS:
                window.purge(now)
            rpm, tpm = check.rpm, check.tpm
            if (rpm is not None and window.requests >= rpm) or (tpm is not None and window.tokens + check.tokens > tpm):
                refused = window.refusal(check, now)
                assert refused is not None
                return Decision(refused[0], len(windows), refused[1])
            windows.append(window)
        budgets: list[BudgetTally] = []
        for budget_check in request.budgets:
            budget = self._budgets.get(budget_check.name) or self._new_budget(budget_check.name,
                                                                              budget_check.expire_at_s)
            if budget.spent + budget.reserved + budget_check.hold_nano > budget_check.limit_nano:
                return Decision(BUDGET, len(budgets), budgets=[budget.state()])
            budgets.append(budget)
        paced, paced_window = -1, None
        if request.pacing:
            paced, retry, paced_window = self._pick(request.pacing, now)
            if paced < 0:
                return Decision(PACING, retry_after_ms=retry)
        ticket = request.ticket
        for window, check in zip(windows, request.rates):
            window.add(ticket, check.tokens, now)
        if paced_window is not None:
            paced_window.add(ticket, request.pacing[paced].tokens, now)
        if not budgets:
            return Decision(OK, budgets=[], soft_crossed=[], paced=paced)
        return self._reserve(ticket, [(b, c.limit_nano, c.soft_nano) for b, c in zip(budgets, request.budgets)],
                             [c.hold_nano for c in request.budgets], now + request.hold_ms, paced)

    def admit_prepared(self, prepared: PreparedKey, pacing: PacingTable | None, order: list, ticket: str,
                       tokens: int, hold_nano: int, hold_ms: int, states: bool = False) -> Decision | None:
        """admit_now for a prepared key (its checks charged `tokens` and `hold_nano`; `pacing` over `order`
        when pacing applies), without looking anything up by name. None when the request does not fit or
        the preparation went stale: then nothing was written, and admit_now answers (and words a refusal).
        The decision's budget states are filled only when a soft threshold was crossed or `states` asks."""
        now = self._admission_clock()
        if prepared.generation != self.generation:
            return None
        horizon = now - WINDOW_MS
        for window, rpm, tpm in prepared.rates:
            if window.slots and window.slots[0][0] <= horizon:
                window.purge(now)
            if (rpm is not None and window.requests >= rpm) or (tpm is not None and window.tokens + tokens > tpm):
                return None
        for budget, limit, _ in prepared.budgets:
            if budget.spent + budget.reserved + hold_nano > limit:
                return None
        paced, paced_window = -1, None
        if pacing is not None:
            for index, candidate in enumerate(order):
                window, rpm, tpm = pacing[candidate.name]
                if window is None:
                    paced = index
                    break
                if window.slots and window.slots[0][0] <= horizon:
                    window.purge(now)
                if (rpm is None or window.requests < rpm) and (tpm is None or window.tokens + tokens <= tpm):
                    paced, paced_window = index, window
                    break
            else:
                return None
        for window, _, _ in prepared.rates:
            window.add(ticket, tokens, now)
        if paced_window is not None:
            paced_window.add(ticket, tokens, now)
        if not prepared.budgets:
            return Decision(OK, -1, 0, [], [], paced)
        crossed = []
        for index, (budget, _, soft) in enumerate(prepared.budgets):
            budget.reserved += hold_nano
            if soft and not budget.alerted and budget.spent + budget.reserved >= soft:
                budget.alerted = True
                crossed.append(index)
        held = prepared.held_budgets
        self._hold(ticket, HeldBudgets(now + hold_ms, held.copy(), [hold_nano] * len(held)))
        if crossed or states:  # each budget once: its state now is its state right after its hold
            return Decision(OK, -1, 0, [BudgetState(b.spent, b.reserved) for b in held], crossed, paced)
        return Decision(OK, -1, 0, [], crossed, paced)

    def _hold(self, ticket: str, held: HeldBudgets) -> None:
        self._held[ticket] = held
        heapq.heappush(self._expiries, (held.expires_ms, ticket))
        if len(self._expiries) > 2 * len(self._held) + 64:
            self._compact_expiries()

    def _reserve(self, ticket: str, budgets: list[tuple[BudgetTally, int, int]], holds: list[int], expires: int,
                 paced: int) -> Decision:
        """Place the holds on (budget, limit, soft threshold) that all have room."""
        states, crossed = [], []
        for index, (budget, _, soft) in enumerate(budgets):
            budget.reserved += holds[index]
            states.append(BudgetState(budget.spent, budget.reserved))
            if soft and not budget.alerted and budget.spent + budget.reserved >= soft:
                budget.alerted = True
                crossed.append(index)
        self._hold(ticket, HeldBudgets(expires, [entry[0] for entry in budgets], holds))
        return Decision(OK, budgets=states, soft_crossed=crossed, paced=paced)

    async def settle(self, settlement: Settlement) -> list[BudgetState]:
        return self.settle_now(settlement)

    def settle_now(self, settlement: Settlement) -> list[BudgetState]:
        """Idempotent like settle.lua: a budget counts the cost only while it holds (or remembers) the ticket."""
        return [budget.state() for budget in self.settle_quietly(settlement)]

    def settle_quietly(self, settlement: Settlement) -> list[BudgetTally]:
        """settle_now without building the states: the budgets settled, in the settlement's order."""
        now = int(self._clock() * 1000)
        ticket = settlement.ticket
        for op, subject, tokens in settlement.rates:
            self._window(subject, now).correct(ticket, op, tokens, now)
        return self._settle_budgets(ticket, settlement.budgets)

    def settle_prepared(self, prepared: PreparedKey, paced: RateWindow | None, ticket: str, tokens: int,
                        cost_nano: int) -> None:
        """settle_quietly for a ticket admitted by admit_prepared with `prepared` (still current) and served
        where pacing charged it (its window `paced`, None when unpaced): the real tokens and cost replace
        its estimate and holds, on the objects admission charged."""
        now = int(self._clock() * 1000)
        for window, _, _ in prepared.rates:
            window.correct(ticket, "fix", tokens, now)
        if paced is not None:
            paced.correct(ticket, "fix", tokens, now)
        if not prepared.budgets:
            return
        held = self._held.pop(ticket, None)
        if held is not None and len(held.budgets) == len(prepared.budgets):  # placed on exactly these
            for budget, hold in zip(held.budgets, held.holds):
                budget.reserved -= hold
                budget.spent += cost_nano
            return
        if held is not None:
            self._held[ticket] = held
        self._settle_budgets(ticket, [(c.name, cost_nano, c.expire_at_s) for c in prepared.budget_checks])

    def _settle_budgets(self, ticket: str, budgets: list[tuple[str, int, int]]) -> list[BudgetTally]:
        if not budgets:
            return []
        held = self._held.pop(ticket, None)
        if held is not None and len(held.budgets) == len(budgets) and \
                all(b.name == s[0] for b, s in zip(held.budgets, budgets)):
            for budget, hold, (_, cost, _) in zip(held.budgets, held.holds, budgets):
                budget.reserved -= hold  # the usual case: every hold of the request, in admission order
                budget.spent += cost
            return held.budgets
        settled = []
        for name, cost, expire in budgets:
            budget = self._budgets.get(name) or self._new_budget(name, expire)
            taken = take_hold(held, budget) if held is not None else None
            if taken is not None:
                budget.reserved -= taken
                budget.spent += cost
            elif ticket in budget.late:
                budget.late.discard(ticket)
                budget.spent += cost
            settled.append(budget)
        if held is not None and held.budgets:  # holds on budgets this settlement did not name stay held
            self._held[ticket] = held
        return settled

    async def revoke(self, key_ids: list[str]) -> None:
        self._revoked.update(key_ids)

    async def budgets(self, names: list[str]) -> list[BudgetState]:
        self._release_expired(int(self._clock() * 1000))
        return [self.state(name) for name in names]

    def state(self, name: str) -> BudgetState:
        """A budget as it stands (holds past their expiry are released at the next admission or read)."""
        budget = self._budgets.get(name)
        return budget.state() if budget is not None else BudgetState(0, 0)

    def add_spend(self, name: str, nano: int, expire_at_s: int) -> None:
        """Count spend settled elsewhere (reconciling after an outage)."""
        (self._budgets.get(name) or self._new_budget(name, expire_at_s)).spent += nano

    def sizes(self) -> dict[str, int]:
        """How many entries the internal structures hold (tests check that memory follows load, not traffic)."""
        return {"rate_subjects": len(self._rates), "rate_slots": sum(len(w.slots) for w in self._rates.values()),
                "rate_live": sum(len(w.live) for w in self._rates.values()), "budgets": len(self._budgets),
                "held": len(self._held), "expiries": len(self._expiries),
                "late": sum(len(b.late) for b in self._budgets.values())}

    def _window(self, subject: str, now: int) -> RateWindow:
        window = self._rates.get(subject)
        if window is None:
            window = self._rates[subject] = RateWindow()
        elif window.slots and window.slots[0][0] <= now - WINDOW_MS:
            window.purge(now)
        return window

    def _new_budget(self, name: str, expire_at_s: int) -> BudgetTally:
        budget = self._budgets[name] = BudgetTally(name, expire_at_s)
        return budget

    def _pick(self, pacing: list[RateCheck], now: int) -> tuple[int, int, RateWindow | None]:
        """The first deployment with room and its window (None when unpaced), or (-1, soonest retry ms, None)."""
        soonest = -1
        for index, check in enumerate(pacing):
            if check.rpm is None and check.tpm is None:
                return index, 0, None
            window = self._window(check.subject, now)
            if window.fits(check):
                return index, 0, window
            refused = window.refusal(check, now)
            assert refused is not None
            if refused[1] >= 0 and (soonest < 0 or refused[1] < soonest):
                soonest = refused[1]
        return -1, soonest, None

    def _release_expired(self, now: int) -> None:
        """Release holds whose reservation expired unsettled; their tickets are remembered as late."""
        expiries, held = self._expiries, self._held
        while expiries and expiries[0][0] <= now:
            expires, ticket = heapq.heappop(expiries)
            entry = held.get(ticket)
            if entry is None or entry.expires_ms != expires:
                continue  # settled already
            del held[ticket]
            for budget, hold in zip(entry.budgets, entry.holds):
                budget.reserved -= hold
                budget.late.add(ticket)

    def _compact_expiries(self) -> None:
        """Drop heap entries of settled tickets once they are most of the heap (amortised O(1) per request)."""
        held = self._held
        self._expiries = [e for e in self._expiries if (h := held.get(e[1])) is not None and h.expires_ms == e[0]]
        heapq.heapify(self._expiries)

    def _forget_old(self, now: int) -> None:
        """Drop periods that ended, idle rate windows and uncorrectable tickets, so memory stays bounded."""
        ended = [n for n, b in self._budgets.items() if b.expire_at_s * 1000 < now]
        for name in ended:
            del self._budgets[name]
        idle = []
        for subject, window in self._rates.items():
            window.purge(now)
            window.forget_gone()
            if not window.slots and not window.live:
                idle.append(subject)
        for subject in idle:
            del self._rates[subject]
        if ended or idle:
            self.generation += 1

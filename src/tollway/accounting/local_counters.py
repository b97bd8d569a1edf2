"""Rate-limit and budget counters in this process: the default on one machine, and the fallback when
Redis is unreachable and `on_redis_failure: open`.

The semantics are those of counters.py, implemented with plain Python structures. `admit` and `settle`
never await, so on the event loop each runs atomically, like a Redis script.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from typing import Callable

from tollway.accounting.counters import (BUDGET, OK, PACING, REVOKED, RPM, TPM, WINDOW_MS, AdmitRequest, BudgetState,
                                         Decision, RateCheck, Settlement)


class _RateLog:
    __slots__ = ("entries", "tokens", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[int, str]] = deque()  # (admitted at ms, ticket), oldest first
        self.tokens: dict[str, int] = {}
        self.total = 0

    def purge(self, now_ms: int) -> None:
        horizon = now_ms - WINDOW_MS
        while self.entries and self.entries[0][0] <= horizon:
            _, ticket = self.entries.popleft()
            self.total -= self.tokens.pop(ticket, 0)

    def refusal(self, check: RateCheck, now_ms: int) -> tuple[str, int] | None:
        """(RPM or TPM, retry-after ms) if one more request would not fit; -1 ms means it never will."""
        if check.rpm is not None and len(self.entries) + 1 > check.rpm:
            return RPM, self.entries[0][0] + WINDOW_MS - now_ms
        if check.tpm is not None and self.total + check.tokens > check.tpm:
            if check.tokens > check.tpm:
                return TPM, -1
            need, freed = self.total + check.tokens - check.tpm, 0
            for at, ticket in self.entries:
                freed += self.tokens.get(ticket, 0)
                if freed >= need:
                    return TPM, at + WINDOW_MS - now_ms
        return None

    def add(self, ticket: str, tokens: int, now_ms: int) -> None:
        self.entries.append((now_ms, ticket))
        self.tokens[ticket] = tokens
        self.total += tokens


class _Budget:
    __slots__ = ("spent", "reserved", "alerted", "holds", "expiries", "expire_at_s", "late")

    def __init__(self, expire_at_s: int) -> None:
        self.spent = 0
        self.reserved = 0
        self.alerted = False
        self.holds: dict[str, int] = {}
        self.expiries: list[tuple[int, str]] = []  # heap of (expires at ms, ticket)
        self.expire_at_s = expire_at_s
        self.late: set[str] = set()  # tickets whose hold expired unsettled: their settle still counts, once

    def purge(self, now_ms: int) -> None:
        while self.expiries and self.expiries[0][0] <= now_ms:
            _, ticket = heapq.heappop(self.expiries)
            hold = self.holds.pop(ticket, None)
            if hold is not None:
                self.reserved -= hold
                self.late.add(ticket)

    def state(self) -> BudgetState:
        return BudgetState(self.spent, self.reserved)

    def forget_settled(self) -> None:
        """Drop heap entries of settled tickets once they are most of the heap: memory then follows the
        requests in flight, not the last reservation_timeout_s of traffic (amortised O(1) per settle)."""
        if len(self.expiries) > 2 * len(self.holds) + 64:
            self.expiries = [entry for entry in self.expiries if entry[1] in self.holds]
            heapq.heapify(self.expiries)


class LocalCounters:
    name = "local"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rates: dict[str, _RateLog] = {}
        self._budgets: dict[str, _Budget] = {}
        self._revoked: set[str] = set()
        self._admissions = 0

    async def admit(self, request: AdmitRequest) -> Decision:
        return self.admit_now(request)

    def admit_now(self, request: AdmitRequest) -> Decision:
        now = int(self._clock() * 1000)
        self._admissions += 1
        if self._admissions % 1024 == 0:
            self._forget_old(now)
        if request.key_id and request.key_id in self._revoked:
            return Decision(REVOKED)
        for index, check in enumerate(request.rates):
            log = self._rate(check.subject, now)
            refused = log.refusal(check, now)
            if refused:
                return Decision(refused[0], index, refused[1])
        budgets = [self._budget(b.name, b.expire_at_s, now) for b in request.budgets]
        for index, (check, budget) in enumerate(zip(request.budgets, budgets)):
            if budget.spent + budget.reserved + check.hold_nano > check.limit_nano:
                return Decision(BUDGET, index, budgets=[budget.state()])
        paced = -1
        if request.pacing:
            paced, retry = self._pick(request.pacing, now)
            if paced < 0:
                return Decision(PACING, retry_after_ms=retry)
        for check in request.rates:
            self._rates[check.subject].add(request.ticket, check.tokens, now)
        if paced >= 0 and _limited(request.pacing[paced]):
            check = request.pacing[paced]
            self._rate(check.subject, now).add(request.ticket, check.tokens, now)
        crossed = []
        for index, (check, budget) in enumerate(zip(request.budgets, budgets)):
            budget.reserved += check.hold_nano
            budget.holds[request.ticket] = check.hold_nano
            heapq.heappush(budget.expiries, (now + request.hold_ms, request.ticket))
            if check.soft_nano and not budget.alerted and budget.spent + budget.reserved >= check.soft_nano:
                budget.alerted = True
                crossed.append(index)
        return Decision(OK, budgets=[b.state() for b in budgets], soft_crossed=crossed, paced=paced)

    async def settle(self, settlement: Settlement) -> list[BudgetState]:
        return self.settle_now(settlement)

    def settle_now(self, settlement: Settlement) -> list[BudgetState]:
        """Idempotent like settle.lua: a budget counts the cost only while it holds (or remembers) the ticket."""
        now = int(self._clock() * 1000)
        for fix in settlement.rates:
            log = self._rate(fix.subject, now)
            old = log.tokens.get(settlement.ticket)
            if fix.op == "add":
                if old is None:
                    log.add(settlement.ticket, fix.tokens, now)
                continue
            if old is None:
                continue
            new = 0 if fix.op == "drop" else fix.tokens
            log.tokens[settlement.ticket] = new
            log.total += new - old
            if fix.op == "drop":
                log.entries = deque(e for e in log.entries if e[1] != settlement.ticket)
                del log.tokens[settlement.ticket]
        states = []
        for name, cost, expire in settlement.budgets:
            budget = self._budget(name, expire, now)
            hold = budget.holds.pop(settlement.ticket, None)
            if hold is not None:
                budget.reserved -= hold
                budget.spent += cost
                budget.forget_settled()
            elif settlement.ticket in budget.late:
                budget.late.discard(settlement.ticket)
                budget.spent += cost
            states.append(budget.state())
        return states

    async def revoke(self, key_ids: list[str]) -> None:
        self._revoked.update(key_ids)

    async def budgets(self, names: list[str]) -> list[BudgetState]:
        now = int(self._clock() * 1000)
        states = []
        for name in names:
            budget = self._budgets.get(name)
            if budget is not None:
                budget.purge(now)
            states.append(budget.state() if budget else BudgetState(0, 0))
        return states

    def add_spend(self, name: str, nano: int, expire_at_s: int) -> None:
        """Count spend settled elsewhere (reconciling after an outage)."""
        self._budget(name, expire_at_s, int(self._clock() * 1000)).spent += nano

    def _rate(self, subject: str, now: int) -> _RateLog:
        log = self._rates.get(subject)
        if log is None:
            log = self._rates[subject] = _RateLog()
        log.purge(now)
        return log

    def _budget(self, name: str, expire_at_s: int, now: int) -> _Budget:
        budget = self._budgets.get(name)
        if budget is None:
            budget = self._budgets[name] = _Budget(expire_at_s)
        budget.purge(now)
        return budget

    def _pick(self, pacing: list[RateCheck], now: int) -> tuple[int, int]:
        """The first deployment with room, or (-1, soonest retry ms)."""
        soonest = -1
        for index, check in enumerate(pacing):
            if not _limited(check):
                return index, 0
            refused = self._rate(check.subject, now).refusal(check, now)
            if refused is None:
                return index, 0
            if refused[1] >= 0 and (soonest < 0 or refused[1] < soonest):
                soonest = refused[1]
        return -1, soonest

    def _forget_old(self, now: int) -> None:
        """Drop periods that ended, idle rate logs and old settle markers, so memory stays bounded."""
        for name in [n for n, b in self._budgets.items() if b.expire_at_s * 1000 < now]:
            del self._budgets[name]
        for log in self._rates.values():
            log.purge(now)
        for subject in [s for s, log in self._rates.items() if not log.entries]:
            del self._rates[subject]


def _limited(check: RateCheck) -> bool:
    return check.rpm is not None or check.tpm is not None

"""The in-process counters' structures: a rolling rate window, a budget's tally, one request's holds.

LocalCounters (local_counters.py) runs the admit/settle semantics over these; a prepared admission
(prepared_admission.py) holds references to them so a request is checked without looking up names.
"""

from __future__ import annotations

from collections import deque

from tollway.accounting.counters.base import RPM, TPM, WINDOW_MS, BudgetState, RateCheck

GONE = -1  # a slot's millisecond once it has left the window: later corrections must not touch the totals


class RateWindow:
    __slots__ = ("slots", "requests", "tokens", "live")

    def __init__(self) -> None:
        self.slots: deque[list[int]] = deque()   # [admitted at ms, requests, tokens], oldest first
        self.requests = 0
        self.tokens = 0
        self.live: dict[str, tuple[list[int], int]] = {}  # ticket -> (its slot, its tokens) until settled

    def purge(self, now_ms: int) -> None:
        slots, horizon = self.slots, now_ms - WINDOW_MS
        while slots and slots[0][0] <= horizon:
            slot = slots.popleft()
            self.requests -= slot[1]
            self.tokens -= slot[2]
            slot[0] = GONE

    def fits(self, check: RateCheck) -> bool:
        return (check.rpm is None or self.requests < check.rpm) and \
            (check.tpm is None or self.tokens + check.tokens <= check.tpm)

    def refusal(self, check: RateCheck, now_ms: int) -> tuple[str, int] | None:
        """(RPM or TPM, retry-after ms) if one more request would not fit; -1 ms means it never will."""
        if check.rpm is not None and self.requests + 1 > check.rpm:
            oldest = next(slot[0] for slot in self.slots if slot[1] > 0)
            return RPM, oldest + WINDOW_MS - now_ms
        if check.tpm is not None and self.tokens + check.tokens > check.tpm:
            if check.tokens > check.tpm:
                return TPM, -1
            need, freed = self.tokens + check.tokens - check.tpm, 0
            for at, _, tokens in self.slots:
                freed += tokens
                if freed >= need:
                    return TPM, at + WINDOW_MS - now_ms
            return TPM, WINDOW_MS
        return None

    def add(self, ticket: str, tokens: int, now_ms: int) -> None:
        slots = self.slots
        if slots and slots[-1][0] == now_ms:
            slot = slots[-1]
            slot[1] += 1
            slot[2] += tokens
        else:
            slot = [now_ms, 1, tokens]
            slots.append(slot)
        self.requests += 1
        self.tokens += tokens
        self.live[ticket] = (slot, tokens)

    def correct(self, ticket: str, op: str, tokens: int, now_ms: int) -> None:
        """Settle's fix ("fix": real tokens; "drop": not served here; "add": served here though charged elsewhere)."""
        entry = self.live.get(ticket)
        if op == "add":
            if entry is None:
                self.add(ticket, tokens, now_ms)  # stays in `live` (until it leaves the window): added once
            return
        if entry is None:
            return
        del self.live[ticket]
        slot, old = entry
        if slot[0] == GONE:
            return
        if op == "drop":
            slot[1] -= 1
            slot[2] -= old
            self.requests -= 1
            self.tokens -= old
        else:
            slot[2] += tokens - old
            self.tokens += tokens - old

    def forget_gone(self) -> None:
        """Tickets never settled whose slot left the window: nothing can correct them any more."""
        if any(slot[0] == GONE for slot, _ in self.live.values()):
            self.live = {t: entry for t, entry in self.live.items() if entry[0][0] != GONE}


class BudgetTally:
    __slots__ = ("name", "spent", "reserved", "alerted", "expire_at_s", "late")

    def __init__(self, name: str, expire_at_s: int) -> None:
        self.name = name
        self.spent = 0
        self.reserved = 0
        self.alerted = False
        self.expire_at_s = expire_at_s
        self.late: set[str] = set()  # tickets whose hold expired unsettled: their settle still counts, once

    def state(self) -> BudgetState:
        return BudgetState(self.spent, self.reserved)


class HeldBudgets:
    """One admitted request's budget holds, until it is settled or they expire."""

    __slots__ = ("expires_ms", "budgets", "holds")

    def __init__(self, expires_ms: int, budgets: list[BudgetTally], holds: list[int]) -> None:
        self.expires_ms = expires_ms
        self.budgets = budgets
        self.holds = holds


def take_hold(held: HeldBudgets, budget: BudgetTally) -> int | None:
    """Remove and return `held`'s hold on `budget`, if it has one."""
    for index, candidate in enumerate(held.budgets):
        if candidate is budget:
            del held.budgets[index]
            return held.holds.pop(index)
    return None

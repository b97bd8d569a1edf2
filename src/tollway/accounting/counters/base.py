"""What admission asks of the shared counters, and what they answer: one call to admit, one to settle.

Both backends (LocalCounters in process, RedisCounters across replicas) implement exactly these
semantics, and the same tests run against both:

- A rate subject (a key, a team, a deployment) keeps a rolling 60-second log of admitted requests and
  their tokens. A request is refused when one more request would exceed `rpm`, or its estimated tokens on
  top of the window's would exceed `tpm`. At settle the estimate is replaced by the real count.
- A budget keeps `spent` and `reserved` in whole nano-dollars for one period. A request is refused when
  spent + reserved + its hold would exceed the limit; otherwise the hold is added to `reserved` with an
  expiry (a gateway that dies mid-request releases it then). Settle removes the hold and adds the real
  cost to `spent`, once per ticket even if retried: a budget counts a ticket only while it still holds
  it, or remembers it as late (its hold expired unsettled), so no per-ticket marker is ever stored.
- A pacing list (a route group's deployments, in order) charges the request to the first deployment with
  room; when none has room the request is refused.
All checks pass or nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

WINDOW_MS = 60_000

OK, REVOKED, RPM, TPM, BUDGET, PACING = "ok", "revoked", "rpm", "tpm", "budget", "pacing"


# The per-request values are named tuples: built several times per request, they cost a tenth of a
# frozen dataclass (whose __init__ goes through object.__setattr__ per field). The hot path builds them
# with `filled(Type, (field, ...))`, tuple.__new__ itself, skipping the generated Python __new__.
filled = tuple.__new__

class RateCheck(NamedTuple):
    subject: str            # "key:ab12", "team:ml", "deployment:ds-flash"
    rpm: int | None
    tpm: int | None
    tokens: int             # this request's estimated tokens


class BudgetCheck(NamedTuple):
    name: str               # "key:ab12:daily:2026-11-22"
    limit_nano: int
    soft_nano: int          # 0: no soft threshold
    hold_nano: int
    expire_at_s: int        # unix time after which the period's counters may be dropped


@dataclass(slots=True)
class AdmitRequest:
    ticket: str
    key_id: str             # "" when no revocation applies
    rates: list[RateCheck] = field(default_factory=list)
    budgets: list[BudgetCheck] = field(default_factory=list)
    pacing: list[RateCheck] = field(default_factory=list)
    hold_ms: int = 360_000  # how long a reservation lives unsettled

    @property
    def empty(self) -> bool:
        return not (self.key_id or self.rates or self.budgets or self.pacing)


@dataclass(slots=True)
class BudgetState:
    spent_nano: int
    reserved_nano: int


@dataclass(slots=True)
class Decision:
    outcome: str                              # OK or the kind of refusal
    index: int = -1                           # which rate/budget refused
    retry_after_ms: int = 0                   # rate refusals: when one more would fit; -1: never
    budgets: list[BudgetState] = field(default_factory=list)  # after this admission (or at refusal: the refusing one)
    soft_crossed: list[int] = field(default_factory=list)     # budgets whose soft threshold this request crossed
    paced: int = -1                           # index into pacing of the deployment charged

    @property
    def ok(self) -> bool:
        return self.outcome == OK


class RateFix(NamedTuple):
    """At settle: `fix` a subject's entry to the real tokens, `drop` it, or `add` one (served elsewhere)."""

    op: str                 # "fix" | "drop" | "add"
    subject: str
    tokens: int = 0


@dataclass(slots=True)
class Settlement:
    ticket: str
    rates: list[RateFix] = field(default_factory=list)
    budgets: list[tuple[str, int, int]] = field(default_factory=list)  # (budget name, cost nano, expire_at_s)


class Counters(Protocol):
    name: str  # "local" | "redis", for logs and tickets

    async def admit(self, request: AdmitRequest) -> Decision: ...
    async def settle(self, settlement: Settlement) -> list[BudgetState]: ...
    async def revoke(self, key_ids: list[str]) -> None: ...
    async def budgets(self, names: list[str]) -> list[BudgetState]: ...

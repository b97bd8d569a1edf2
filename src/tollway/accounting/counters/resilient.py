"""The counters admission talks to: Redis when configured, in-process otherwise, and what an outage means.

When Redis cannot be reached, `on_redis_failure` decides:
- closed: admissions are refused (503) until it answers again; nothing is admitted that is not counted.
- open: admissions use in-process counters seeded with the last spend this replica saw, and an alert
  event goes out. Limits then hold per replica only.
Either way settles are never lost: a settle Redis did not acknowledge is kept and replayed (settles are
idempotent per ticket), and spend settled on local counters is added to Redis when it returns. An
admission whose reply was lost may still have placed holds in Redis: it is released (settled at zero)
when Redis returns, rather than left to expire.
A probe pings Redis every `probe_s` while it is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from tollway.accounting.counters.base import AdmitRequest, BudgetState, Decision, RateFix, Settlement
from tollway.accounting.counters.local import LocalCounters

if TYPE_CHECKING:
    from tollway.accounting.counters.redis import RedisCounters

log = logging.getLogger("tollway.admission")


class _NeverRaised(Exception):
    """Stands in for Redis's errors when there is no Redis (its client is imported only when configured)."""


class CountersUnavailable(Exception):
    """Redis is down and the config says to fail closed; the message says so without secrets."""


class ResilientCounters:
    def __init__(self, redis: "RedisCounters | None", fail_open: bool, where: str = "",
                 on_event: Callable[[dict], None] = lambda event: None, probe_s: float = 0.5) -> None:
        self.redis = redis
        self._errors: tuple[type[BaseException], ...] = _redis_errors() if redis is not None else (_NeverRaised,)
        self.local = LocalCounters()
        self.fail_open = fail_open
        self.where = where
        self.known: dict[str, BudgetState] = {}   # last state seen per budget name
        self._expiry: dict[str, int] = {}
        self._on_event = on_event
        self._probe_s = probe_s
        self._down_reason = ""
        self._pending: deque[Settlement] = deque()      # Redis-admitted settles Redis has not acknowledged
        self._unreconciled: dict[str, int] = {}          # spend settled locally, not yet added to Redis
        self._seeded: set[str] = set()                   # budgets started from `known` in this outage
        self._pushing = asyncio.Lock()
        self._probe: asyncio.Task | None = None

    @property
    def shared(self) -> bool:
        return self.redis is not None

    @property
    def down(self) -> bool:
        return bool(self._down_reason)

    async def admit(self, request: AdmitRequest) -> tuple[Decision, str]:
        """The decision and which counters made it ("redis" or "local")."""
        if self.redis is None:  # in process only: nothing to remember for an outage (state_of reads live)
            return self.local.admit_now(request), "local"
        if not self.down:
            try:
                decision = await self.redis.admit(request)
            except self._errors as exc:
                self._pending.append(_release(request))  # the script may have run before the reply was lost
                self._went_down(exc)
            else:
                self._remember(request, decision)
                return decision, "redis"
        if not self.fail_open:
            raise CountersUnavailable(f"The rate-limit and budget store (Redis at {self.where}) is unreachable; "
                                      "requests are refused until it is back (on_redis_failure: closed).")
        self._seed_local(request)
        decision = self.local.admit_now(request)
        self._remember(request, decision)
        return decision, "local"

    def admit_in_process(self, request: AdmitRequest) -> Decision | None:
        """The decision at once, without a coroutine, when there is no Redis; None when there is, and
        `admit` must be awaited."""
        if self.redis is not None:
            return None
        return self.local.admit_now(request)

    def settle_in_process(self, settlement: Settlement) -> bool:
        """Settle at once, without a task, when there is no Redis (the counters are this process's); False
        when there is, and `settle` must be awaited."""
        if self.redis is not None:
            return False
        self.local.settle_quietly(settlement)
        return True

    def state_of(self, name: str) -> BudgetState | None:
        """A budget's state as last seen: live from this process's counters when there is no Redis."""
        if self.redis is None:
            return self.local.state(name)
        return self.known.get(name)

    async def settle(self, settlement: Settlement, backend: str) -> None:
        """Never raises: what Redis cannot take now is kept and replayed when it answers again."""
        if self.redis is None:
            self.local.settle_quietly(settlement)
            return
        for name, _, expire in settlement.budgets:
            self._expiry[name] = expire
        if backend == "local":  # admitted during an outage: its spend goes to Redis when it is back
            self.local.settle_quietly(settlement)
            for name, cost, _ in settlement.budgets:
                self._unreconciled[name] = self._unreconciled.get(name, 0) + cost
            if not self.down:  # the outage has ended: add its spend now
                try:
                    await self._push_unreconciled()
                except self._errors as exc:
                    self._went_down(exc)
            return
        if self.down:
            self._pending.append(settlement)
            return
        try:
            states = await self.redis.settle(settlement)
        except self._errors as exc:
            self._pending.append(settlement)
            self._went_down(exc)
            return
        for (name, _, _), state in zip(settlement.budgets, states):
            self.known[name] = state

    async def revoke(self, key_ids: list[str]) -> None:
        await self.local.revoke(key_ids)
        if self.redis is not None:
            try:
                await self.redis.revoke(key_ids)
            except self._errors as exc:
                self._went_down(exc)

    async def refresh(self, names: list[str]) -> None:
        """Update `known` for these budgets from the counters (the admin API and dashboards read it)."""
        source = self.local
        if self.redis is not None and not self.down:
            source = self.redis  # type: ignore[assignment]
        try:
            states = await source.budgets(names)
        except self._errors as exc:
            self._went_down(exc)
            return
        if source is self.local:
            return  # state_of reads them live; during an outage they hold only this replica's part
        self.known.update(zip(names, states))
        self._forget_ended()

    def _forget_ended(self) -> None:
        """Drop what is remembered of budget periods whose counters have expired (names carry the period)."""
        now = time.time()
        for name in [n for n, until in self._expiry.items() if until and until < now]:
            self._expiry.pop(name, None)
            self.known.pop(name, None)
            self._seeded.discard(name)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            try:
                await self._probe
            except asyncio.CancelledError:
                pass
        if self.redis is not None:
            if self.down:
                await self._try_recover()
            if self._pending or self._unreconciled:
                log.error("Redis at %s is unreachable at shutdown: %d settles and spend on %d budgets could not be "
                          "written there; the ledger has every row (see docs/budgets.md, reconciling)",
                          self.where, len(self._pending), len(self._unreconciled))
            await self.redis.close()

    def _remember(self, request: AdmitRequest, decision: Decision) -> None:
        for check in request.budgets:
            self._expiry[check.name] = check.expire_at_s
        if decision.ok:
            self.known.update((b.name, s) for b, s in zip(request.budgets, decision.budgets))
        elif decision.budgets and decision.index >= 0:
            self.known[request.budgets[decision.index].name] = decision.budgets[0]

    def _seed_local(self, request: AdmitRequest) -> None:
        """The first time a budget is counted locally in an outage, start it at what Redis last said."""
        for check in request.budgets:
            if check.name not in self._seeded:
                self._seeded.add(check.name)
                last = self.known.get(check.name)
                if last is not None:
                    self.local.add_spend(check.name, last.spent_nano + last.reserved_nano, check.expire_at_s)

    def _went_down(self, exc: BaseException) -> None:
        if self.down:
            return
        self._down_reason = f"{type(exc).__name__}: {exc}"
        self._seeded = set()
        mode = "open: counting in this process" if self.fail_open else "closed: refusing requests"
        log.error("Redis at %s is unreachable (%s); failing %s until it is back", self.where, self._down_reason, mode)
        self._on_event({"event": "redis_unavailable", "where": self.where, "mode": "open" if self.fail_open else "closed",
                        "reason": self._down_reason})
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_until_back(), name="redis-probe")

    async def _probe_until_back(self) -> None:
        while self.down:
            await asyncio.sleep(self._probe_s)
            await self._try_recover()

    async def _push_unreconciled(self) -> None:
        """Add locally settled spend to Redis; one pusher at a time, and spend settled meanwhile stays queued."""
        assert self.redis is not None
        async with self._pushing:
            for name in list(self._unreconciled):
                amount = self._unreconciled[name]
                await self.redis.add_spend(name, amount, self._expiry.get(name, 0))
                left = self._unreconciled[name] - amount
                if left:
                    self._unreconciled[name] = left
                else:
                    del self._unreconciled[name]

    async def _try_recover(self) -> None:
        """Ping; on an answer, replay pending settles and add locally settled spend, then use Redis again."""
        assert self.redis is not None
        try:
            await self.redis.ping()
            while self._pending or self._unreconciled:  # settles keep arriving while this replays them
                while self._pending:
                    await self.redis.settle(self._pending[0])
                    self._pending.popleft()
                await self._push_unreconciled()
        except self._errors:
            return
        # nothing awaited since the queues were seen empty: no settle can slip in before Redis is used again
        was = self._down_reason
        self._down_reason = ""
        self.local = LocalCounters()  # what it counted is in Redis now; the next outage starts afresh
        log.warning("Redis at %s is back; pending settles replayed and local spend reconciled", self.where)
        self._on_event({"event": "redis_recovered", "where": self.where, "was": was})


def _release(request: AdmitRequest) -> Settlement:
    """A settle that undoes whatever an admission with a lost reply may have counted in Redis."""
    drops = [RateFix("drop", check.subject) for check in [*request.rates, *request.pacing]]
    return Settlement(request.ticket, drops, [(check.name, 0, check.expire_at_s) for check in request.budgets])


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)

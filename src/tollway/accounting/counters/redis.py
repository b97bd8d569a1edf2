"""Rate-limit and budget counters in Redis, shared by every replica: one script call to admit, one to settle.

The scripts (accounting/counters/lua/*.lua) run atomically inside Redis with Redis's own clock, so N replicas
enforce one limit exactly, not N limits. Scripts are sent by SHA (EVALSHA) and reloaded after a Redis
restart. The script calls (two per request) go over a lean pipelined client of their own (resp_client.py);
everything else uses redis-py. Errors are not retried here; the ResilientCounters around this class
decide what an outage means (fail closed or open).
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from tollway.accounting.counters.base import (
    OK,
    AdmitRequest,
    BudgetState,
    Decision,
    RateCheck,
    Settlement,
)
from tollway.accounting.counters.resp_client import RedisAddress, RespClient, Script

PREFIX = "tw:"
REVOKED_KEY = PREFIX + "revoked"


def _script(name: str) -> str:
    return (resources.files("tollway.accounting.counters") / "lua" / name).read_text()


# Connections are opened lazily, one per Redis call in flight. redis-py's default limit (100) raised
# MaxConnectionsError at ~200 streamed requests/s, which admission took for an outage and refused requests.
MAX_CONNECTIONS = 10_000


def connect(url: str, timeout_s: float = 1.0) -> aioredis.Redis:
    """A client that fails fast: a dead Redis must cost a request milliseconds, not the default seconds.

    No socket_timeout: redis-py would wrap every send in asyncio.wait_for (a task per command) and every
    read in a timeout of its own. RedisCounters bounds each whole call instead, one timer per call; a call
    cut short drops its connection (redis-py disconnects on any exception mid-reply)."""
    return aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=None,
                                   max_connections=MAX_CONNECTIONS,
                                   socket_connect_timeout=timeout_s,
                                   retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))


# Every admission names the same few subjects and budgets: their keys are built once (bounded: budget
# names change with each period).
@functools.lru_cache(maxsize=4096)
def rate_keys(subject: str) -> tuple[str, ...]:
    base = f"{PREFIX}rl:{subject}"
    return (base, base + ":tok", base + ":sum")


@functools.lru_cache(maxsize=4096)
def budget_keys(name: str) -> tuple[str, ...]:
    base = f"{PREFIX}bud:{name}"
    return (base, base + ":res", base + ":hold", base + ":late")


class RedisCounters:
    name = "redis"

    def __init__(self, client: aioredis.Redis, timeout_s: float = 1.0) -> None:
        self.client = client
        self.timeout_s = timeout_s  # per call; past it the call raises TimeoutError (an outage to ResilientCounters)
        self.scripts = RespClient(RedisAddress.from_redis_py(client), connect_timeout_s=timeout_s)
        self._admit = Script(_script("admit.lua"))
        self._settle = Script(_script("settle.lua"))
        self._state = Script(_script("budget_state.lua"))

    async def admit(self, request: AdmitRequest) -> Decision:
        keys = [REVOKED_KEY]
        args: list[str | int] = [request.ticket, request.key_id, request.hold_ms, len(request.rates),
                                 len(request.budgets), len(request.pacing)]
        for check in request.rates:
            keys += rate_keys(check.subject)
            args += _rate_args(check)
        for budget in request.budgets:
            keys += budget_keys(budget.name)
            args += [budget.limit_nano, budget.soft_nano, budget.hold_nano, budget.expire_at_s]
        for check in request.pacing:
            keys += rate_keys(check.subject)
            args += _rate_args(check)
        return _decision(await self.scripts.evalsha(self._admit, keys, args, self.timeout_s))

    async def settle(self, settlement: Settlement) -> list[BudgetState]:
        keys: list[str] = []
        args: list[str | int] = [settlement.ticket, len(settlement.rates), len(settlement.budgets)]
        for fix in settlement.rates:
            keys += rate_keys(fix.subject)
            args += [fix.op, fix.tokens]
        for name, cost, expire_at in settlement.budgets:
            keys += budget_keys(name)
            args += [cost, expire_at]
        return _states(await self.scripts.evalsha(self._settle, keys, args, self.timeout_s))

    async def revoke(self, key_ids: list[str]) -> None:
        if key_ids:
            async with asyncio.timeout(self.timeout_s):
                await self.client.sadd(REVOKED_KEY, *key_ids)

    async def budgets(self, names: list[str]) -> list[BudgetState]:
        if not names:
            return []
        keys = [k for name in names for k in budget_keys(name)]
        return _states(await self.scripts.evalsha(self._state, keys, [], self.timeout_s))

    async def add_spend(self, name: str, nano: int, expire_at_s: int) -> None:
        """Count spend settled while Redis was unreachable (reconciling)."""
        key = budget_keys(name)[0]
        async with asyncio.timeout(self.timeout_s), self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "spent", nano)
            if expire_at_s:
                pipe.expireat(key, expire_at_s)
            await pipe.execute()

    async def ping(self) -> bool:
        async with asyncio.timeout(self.timeout_s):
            return bool(await self.client.ping())

    async def close(self) -> None:
        await self.scripts.close()
        await self.client.aclose()


def _rate_args(check: RateCheck) -> list[str | int]:
    return ["" if check.rpm is None else check.rpm, "" if check.tpm is None else check.tpm, check.tokens]


def _decision(reply: list) -> Decision:
    outcome = reply[0]
    if outcome == OK:
        states, crossed = [], []
        for index, at in enumerate(range(2, len(reply), 3)):
            states.append(BudgetState(int(reply[at]), int(reply[at + 1])))
            if int(reply[at + 2]):
                crossed.append(index)
        return Decision(OK, budgets=states, soft_crossed=crossed, paced=int(reply[1]))
    if outcome == "budget":
        return Decision(outcome, int(reply[1]), budgets=[BudgetState(int(reply[2]), int(reply[3]))])
    if len(reply) == 1:
        return Decision(outcome)
    return Decision(outcome, int(reply[1]), int(reply[2]))


def _states(reply: list) -> list[BudgetState]:
    return [BudgetState(int(reply[i]), int(reply[i + 1])) for i in range(0, len(reply), 2)]

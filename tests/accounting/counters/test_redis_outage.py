"""What a Redis outage means for admission, against a real redis-server killed and restarted.

Fail closed refuses while Redis is away; fail open counts in process. Either way no settle is lost:
settles Redis did not take are replayed, and spend counted locally is added to Redis once it is back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tollway.accounting.counters.base import AdmitRequest, BudgetCheck, Settlement
from tollway.accounting.counters.redis import RedisCounters, connect
from tollway.accounting.counters.resilient import CountersUnavailable, ResilientCounters

EXPIRE = int(time.time()) + 7 * 86400
NAME = "key:k1:daily:2026-11-22"


def request(ticket: str, hold: int = 100, limit: int = 10_000) -> AdmitRequest:
    return AdmitRequest(ticket, "k1", budgets=[BudgetCheck(NAME, limit, 0, hold, EXPIRE)])


def settlement(ticket: str, cost: int) -> Settlement:
    return Settlement(ticket, budgets=[(NAME, cost, EXPIRE)])


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def redis_spent(handle) -> int:
    with handle.client() as client:
        return int(client.hget(f"tw:bud:{NAME}", "spent") or 0)


def test_fail_closed_refuses_while_redis_is_down_and_replays_settles_after(redis_factory) -> None:
    server = redis_factory()
    events: list[dict] = []

    async def scenario() -> None:
        counters = ResilientCounters(RedisCounters(connect(server.url)), fail_open=False, where="test",
                                     on_event=events.append, probe_s=0.1)
        decision, backend = await counters.admit(request("before"))
        assert decision.ok and backend == "redis"
        server.kill()
        await counters.settle(settlement("before", 40), "redis")    # not acknowledged: kept
        with pytest.raises(CountersUnavailable, match=r"Redis at test\) is unreachable.*on_redis_failure: closed"):
            await counters.admit(request("during"))
        server.start()
        await wait_until(lambda: not counters.down)
        decision, backend = await counters.admit(request("after"))
        assert decision.ok and backend == "redis"
        await counters.settle(settlement("after", 2), "redis")
        await counters.close()

    asyncio.run(scenario())
    assert redis_spent(server) == 42, "the settle made while Redis was down was replayed"
    assert [e["event"] for e in events] == ["redis_unavailable", "redis_recovered"]
    assert events[0]["mode"] == "closed"


def test_fail_open_counts_locally_from_the_last_known_spend_and_reconciles(redis_factory) -> None:
    server = redis_factory()

    async def scenario() -> None:
        counters = ResilientCounters(RedisCounters(connect(server.url)), fail_open=True, where="test", probe_s=0.1)
        assert (await counters.admit(request("r0", hold=100, limit=1000)))[0].ok
        await counters.settle(settlement("r0", 600), "redis")
        server.kill()
        first, backend = await counters.admit(request("l1", hold=300, limit=1000))
        assert first.ok and backend == "local"
        refused, _ = await counters.admit(request("l2", hold=300, limit=1000))
        assert refused.outcome == "budget", "local counters start from the 600 Redis last reported"
        await counters.settle(settlement("l1", 250), "local")
        server.start()
        await wait_until(lambda: not counters.down)
        await counters.close()

    asyncio.run(scenario())
    assert redis_spent(server) == 850, "spend settled locally was added to Redis"


def test_a_settle_after_recovery_of_a_locally_admitted_request_reaches_redis(redis_factory) -> None:
    server = redis_factory()

    async def scenario() -> None:
        counters = ResilientCounters(RedisCounters(connect(server.url)), fail_open=True, where="test", probe_s=0.1)
        assert (await counters.admit(request("warm")))[0].ok
        server.kill()
        assert (await counters.admit(request("slow")))[1] == "local"
        server.start()
        await wait_until(lambda: not counters.down)
        await counters.settle(settlement("slow", 77), "local")
        await counters.close()

    asyncio.run(scenario())
    assert redis_spent(server) == 77

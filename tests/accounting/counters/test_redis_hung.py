"""A Redis that stops answering (paused, not dead): each counters call gives up after its timeout, the
gateway treats that as an outage, and the connection that timed out is never reused, so no later call
can read the reply meant for the one that gave up.

(The client has no per-socket-operation timeout, which cost a task per command; each whole call is
bounded instead.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from tollway.accounting.counters.base import AdmitRequest, BudgetCheck
from tollway.accounting.counters.redis import RedisCounters, connect
from tollway.accounting.counters.resilient import CountersUnavailable, ResilientCounters

NAME = "key:k1:daily:2026-11-22"
EXPIRE = int(time.time()) + 7 * 86400


def request(ticket: str) -> AdmitRequest:
    return AdmitRequest(ticket, "k1", budgets=[BudgetCheck(NAME, 10**9, 0, 100, EXPIRE)])


def test_a_paused_redis_times_out_and_no_stale_reply_is_read_afterwards(redis_factory) -> None:
    server = redis_factory()
    assert server.proc is not None

    async def scenario() -> None:
        redis = RedisCounters(connect(server.url), timeout_s=0.3)
        counters = ResilientCounters(redis, fail_open=False, where="test", probe_s=0.1)
        first, _ = await counters.admit(request("t0"))
        assert first.ok and first.budgets[0].reserved_nano == 100
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            try:
                await counters.admit(request("t1"))
                raise AssertionError("a paused Redis admitted a request")
            except CountersUnavailable as refused:
                assert "unreachable" in str(refused)
            assert time.monotonic() - started < 2.0, "the call gave up after its timeout"
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        for _ in range(100):  # the probe sees Redis answer again
            if not counters.down:
                break
            await asyncio.sleep(0.05)
        assert not counters.down
        # t1's script ran once Redis resumed, and recovery released its hold (its reply was lost)
        decision = await redis.admit(request("t2"))
        assert decision.ok and decision.budgets[0].reserved_nano == 200, \
            "t2's own reply: t0's hold and its own (a stale reply would say otherwise)"
        await counters.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))  # a call with no bound would hang here

"""The counters' semantics, run against both backends: in-process and a real Redis (the Lua scripts).

Both must give the same answers to the same calls; that is what makes the single-machine default and the
many-replica setup the same product.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tollway.accounting.counters.base import AdmitRequest, BudgetCheck, RateCheck, RateFix, Settlement
from tollway.accounting.counters.local import LocalCounters
from tollway.accounting.counters.redis import RedisCounters, connect

EXPIRE = int(time.time()) + 7 * 86400
BUDGET = "key:k1:daily:2026-11-22"


@pytest.fixture(params=["local", "redis"])
def counters(request):
    if request.param == "local":
        yield LocalCounters()
        return
    redis_url = request.getfixturevalue("redis_url")
    yield RedisCounters(connect(redis_url))


def run(coro):
    return asyncio.run(coro)


def call(counters, method, *args):
    """One counters call in a fresh loop (a Redis client is bound to the loop that first used it)."""
    async def go():
        try:
            return await getattr(counters, method)(*args)
        finally:
            if isinstance(counters, RedisCounters):
                await counters.client.aclose()
    return run(go())


def admit(counters, ticket, rates=(), budgets=(), pacing=(), key_id="", hold_ms=60_000):
    return call(counters, "admit", AdmitRequest(ticket, key_id, list(rates), list(budgets), list(pacing), hold_ms))


def settle(counters, ticket, rates=(), budgets=()):
    return call(counters, "settle", Settlement(ticket, list(rates), list(budgets)))


def budget(limit=250, hold=100, soft=0, name=BUDGET):
    return BudgetCheck(name, limit, soft, hold, EXPIRE)


def test_rpm_admits_up_to_the_limit_then_says_when_to_retry(counters) -> None:
    rate = RateCheck("key:k1", 3, None, 10)
    assert [admit(counters, f"t{i}", [rate]).outcome for i in range(3)] == ["ok"] * 3
    refused = admit(counters, "t3", [rate])
    assert (refused.outcome, refused.index) == ("rpm", 0)
    assert 55_000 <= refused.retry_after_ms <= 60_000


def test_tpm_counts_estimates_and_settle_replaces_them_with_real_counts(counters) -> None:
    rate = RateCheck("key:k1", None, 250, 100)
    assert admit(counters, "a", [rate]).ok and admit(counters, "b", [rate]).ok
    assert admit(counters, "c", [rate]).outcome == "tpm"
    settle(counters, "a", [RateFix("fix", "key:k1", 10)])
    assert admit(counters, "c", [rate]).ok, "10 + 100 + 100 real+estimated tokens fit in 250"
    assert admit(counters, "d", [RateCheck("key:k1", None, 250, 41)]).outcome == "tpm"
    assert admit(counters, "d", [RateCheck("key:k1", None, 250, 40)]).ok


def test_a_request_larger_than_the_whole_tpm_never_fits(counters) -> None:
    refused = admit(counters, "big", [RateCheck("key:k1", None, 250, 251)])
    assert (refused.outcome, refused.retry_after_ms) == ("tpm", -1)


def test_budget_holds_the_most_a_request_can_cost_and_settles_the_real_cost(counters) -> None:
    first = admit(counters, "t0", budgets=[budget()])
    assert first.ok and (first.budgets[0].spent_nano, first.budgets[0].reserved_nano) == (0, 100)
    assert admit(counters, "t1", budgets=[budget()]).ok
    refused = admit(counters, "t2", budgets=[budget()])
    assert (refused.outcome, refused.index) == ("budget", 0)
    assert (refused.budgets[0].spent_nano, refused.budgets[0].reserved_nano) == (0, 200)
    [state] = settle(counters, "t0", budgets=[(BUDGET, 30, EXPIRE)])
    assert (state.spent_nano, state.reserved_nano) == (30, 100)
    assert admit(counters, "t2", budgets=[budget()]).ok, "30 spent + 100 held + 100 = 230 fits in 250"
    assert admit(counters, "t3", budgets=[budget(hold=21)]).outcome == "budget"
    assert admit(counters, "t3", budgets=[budget(hold=20)]).ok, "exactly the limit is allowed"


def test_settling_twice_counts_once(counters) -> None:
    rate = RateCheck("key:k1", None, 100, 50)
    assert admit(counters, "t0", [rate], budgets=[budget()]).ok
    fixes = [RateFix("fix", "key:k1", 30), RateFix("add", "deployment:b", 40)]
    settle(counters, "t0", fixes, budgets=[(BUDGET, 30, EXPIRE)])
    [again] = settle(counters, "t0", fixes, budgets=[(BUDGET, 30, EXPIRE)])
    assert (again.spent_nano, again.reserved_nano) == (30, 0)
    assert admit(counters, "t1", [RateCheck("key:k1", None, 100, 70)]).ok, "30 + 70 tokens: the fix applied once"
    assert admit(counters, "t2", [RateCheck("deployment:b", None, 100, 60)]).ok, "40 + 60: the add counted once"
    assert admit(counters, "t3", [RateCheck("deployment:b", None, 100, 1)]).outcome == "tpm"


def test_redis_keeps_no_key_per_settled_request(redis_url) -> None:
    counters = RedisCounters(connect(redis_url))
    for n in range(50):
        assert admit(counters, f"t{n}", [RateCheck("key:k1", None, None, 5)], [budget(limit=10**9)]).ok
        settle(counters, f"t{n}", [RateFix("fix", "key:k1", 4)], [(BUDGET, 3, EXPIRE)])
    import redis

    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() <= 8, sorted(client.keys())
        assert client.hlen(f"tw:bud:{BUDGET}:hold") == 0 and client.zcard(f"tw:bud:{BUDGET}:res") == 0


def test_an_unsettled_hold_is_released_when_it_expires(counters) -> None:
    assert admit(counters, "lost", budgets=[budget(hold=200)], hold_ms=300).ok
    assert admit(counters, "t1", budgets=[budget(hold=100)]).outcome == "budget"
    time.sleep(0.45)
    [state] = call(counters, "budgets", [BUDGET])
    assert (state.spent_nano, state.reserved_nano) == (0, 0)
    assert admit(counters, "t1", budgets=[budget(hold=100)]).ok
    [late] = settle(counters, "lost", budgets=[(BUDGET, 50, EXPIRE)])
    assert (late.spent_nano, late.reserved_nano) == (50, 100), "a late settle still counts its cost, once"


def test_all_checks_pass_or_nothing_is_counted(counters) -> None:
    rate = RateCheck("key:k1", 2, None, 10)
    assert admit(counters, "t0", [rate], [budget(hold=200)]).ok
    refused = admit(counters, "t1", [rate], [budget(hold=100)])
    assert refused.outcome == "budget"
    assert admit(counters, "t1", [rate], [budget(hold=50)]).ok, "the refused request took no rpm slot"
    [state] = call(counters, "budgets", [BUDGET])
    assert state.reserved_nano == 250


def test_soft_threshold_is_reported_once_per_budget(counters) -> None:
    soft = budget(limit=1000, hold=300, soft=800)
    crossed = [admit(counters, f"t{i}", budgets=[soft]).soft_crossed for i in range(3)]
    assert crossed == [[], [], [0]]
    settle(counters, "t0", budgets=[(BUDGET, 0, EXPIRE)])
    assert admit(counters, "t3", budgets=[soft]).soft_crossed == [], "already reported"


def test_revoked_key_is_refused_before_anything_is_counted(counters) -> None:
    call(counters, "revoke", ["k1"])
    assert admit(counters, "t0", budgets=[budget()], key_id="k1").outcome == "revoked"
    assert admit(counters, "t1", budgets=[budget()], key_id="k2").ok


def test_pacing_charges_the_first_deployment_with_room(counters) -> None:
    pacing = [RateCheck("deployment:a", 1, None, 5), RateCheck("deployment:b", 2, None, 5)]
    assert [admit(counters, f"p{i}", pacing=pacing).paced for i in range(3)] == [0, 1, 1]
    refused = admit(counters, "p3", pacing=pacing)
    assert refused.outcome == "pacing" and 55_000 <= refused.retry_after_ms <= 60_000
    unlimited = pacing + [RateCheck("deployment:c", None, None, 5)]
    assert admit(counters, "p4", pacing=unlimited).paced == 2


def test_settle_moves_a_paced_request_to_the_deployment_that_served_it(counters) -> None:
    pacing = [RateCheck("deployment:a", 1, None, 5)]
    assert admit(counters, "p0", pacing=pacing).paced == 0
    settle(counters, "p0", [RateFix("drop", "deployment:a"), RateFix("add", "deployment:b", 7)])
    assert admit(counters, "p1", pacing=pacing).paced == 0, "the slot on a was given back"
    assert admit(counters, "p2", [RateCheck("deployment:b", 1, None, 1)]).outcome == "rpm", "b counts the request"


def test_local_window_rolls_after_sixty_seconds() -> None:
    now = [1000.0]
    counters = LocalCounters(clock=lambda: now[0])
    rate = RateCheck("key:k1", 2, 100, 50)
    assert counters.admit_now(AdmitRequest("a", "", [rate])).ok
    now[0] += 30
    assert counters.admit_now(AdmitRequest("b", "", [rate])).ok
    refused = counters.admit_now(AdmitRequest("c", "", [rate]))
    assert (refused.outcome, refused.retry_after_ms) == ("rpm", 30_000)
    now[0] += 30
    assert counters.admit_now(AdmitRequest("c", "", [rate])).ok, "a's entry is 60 s old: out of the window"


def test_local_budget_memory_follows_requests_in_flight_not_past_traffic():
    """Settled holds leave the expiry heap (the soak showed it holding 360 s of traffic)."""
    from tollway.accounting.counters.base import AdmitRequest, BudgetCheck, Settlement
    from tollway.accounting.counters.local import LocalCounters

    counters = LocalCounters(clock=lambda: 1_000.0)
    for i in range(10_000):
        ticket = f"t{i}"
        decision = counters.admit_now(AdmitRequest(ticket, "", [], [BudgetCheck("b", 10**15, 0, 1000, 99999)], [], 360_000))
        assert decision.ok
        counters.settle_now(Settlement(ticket, [], [("b", 400, 99999)]))
    state = counters.state("b")
    assert state.spent_nano == 4_000_000 and state.reserved_nano == 0
    sizes = counters.sizes()
    assert sizes["held"] == 0
    assert sizes["expiries"] <= 64 + 1, "the heap keeps only what is still held"

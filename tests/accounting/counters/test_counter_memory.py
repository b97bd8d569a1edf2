"""Admission's memory follows the requests in flight, not the traffic: tens of thousands of admit + settle
cycles leave the counters' structures as small as a handful did (counted in entries, not RSS).

The soak once showed resident memory rising by 115 MiB over 200,000 requests: every budget hold stayed
in an expiry heap for six minutes after its request was settled, and every request stayed in its rate
windows for a minute.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from tests.accounting.support import chat_request, config, row, started
from tollway.accounting.counters.base import AdmitRequest, BudgetCheck, RateCheck, RateFix, Settlement
from tollway.accounting.counters.local import LocalCounters
from tollway.accounting.keys.records import KeySpec

EXPIRE_S = 10**10  # budget periods that do not end during the test
BUDGETS = ("key:k:daily:d", "key:k:monthly:m", "team:t:daily:d", "team:t:monthly:m")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def cycle(counters: LocalCounters, ticket: str, settle: bool = True) -> None:
    """One request as admission makes it: key and team rates, four budgets, two paced deployments."""
    rates = [RateCheck("key:k", 10**9, 10**12, 70), RateCheck("team:t", 10**9, 10**12, 70)]
    budgets = [BudgetCheck(name, 10**15, 0, 1000, EXPIRE_S) for name in BUDGETS]
    pacing = [RateCheck("deployment:a", 10**9, 10**12, 70), RateCheck("deployment:b", 10**9, 10**12, 70)]
    decision = counters.admit_now(AdmitRequest(ticket, "", rates, budgets, pacing, 360_000))
    assert decision.ok and decision.paced == 0
    if settle:
        fixes = [RateFix("fix", "key:k", 64), RateFix("fix", "team:t", 64), RateFix("fix", "deployment:a", 64)]
        counters.settle_now(Settlement(ticket, fixes, [(name, 400, EXPIRE_S) for name in BUDGETS]))


def run(counters: LocalCounters, clock: Clock, start: int, count: int, step_s: float) -> None:
    for n in range(start, start + count):
        cycle(counters, f"t{n}")
        clock.now += step_s


def test_fifty_thousand_settled_requests_leave_nothing_behind_but_the_window() -> None:
    clock = Clock()
    counters = LocalCounters(clock)
    run(counters, clock, 0, 25_000, 0.004)     # 100 s of traffic at 250 requests/s
    halfway = counters.sizes()
    run(counters, clock, 25_000, 25_000, 0.004)
    final = counters.sizes()
    assert final["expiries"] <= 64 + 1 and halfway["expiries"] <= 64 + 1, "settled holds leave the expiry heap"
    del final["expiries"], halfway["expiries"]
    assert final == halfway, "the same traffic for twice as long holds no more"
    assert halfway["held"] == 0 and halfway["rate_live"] == 0 and halfway["late"] == 0
    assert halfway["rate_subjects"] == 3 and halfway["rate_slots"] == 3 * 15_000, "one slot per admitting ms"
    for name in BUDGETS:
        state = counters.state(name)
        assert (state.spent_nano, state.reserved_nano) == (50_000 * 400, 0), "money stays exact"


def test_the_window_is_bounded_by_its_milliseconds_not_by_the_request_rate() -> None:
    clock = Clock()
    counters = LocalCounters(clock)
    for n in range(50_000):          # 20 requests per millisecond: 20,000 requests/s
        cycle(counters, f"t{n}")
        if n % 20 == 19:
            clock.now += 0.001
    sizes = counters.sizes()
    assert sizes["rate_slots"] == 3 * 2_500, "20 requests in one millisecond share its slot"
    assert sizes["held"] == 0 and sizes["rate_live"] == 0 and sizes["expiries"] <= 65


def test_what_was_never_settled_leaves_when_it_expires() -> None:
    clock = Clock()
    counters = LocalCounters(clock)
    for n in range(2_000):
        cycle(counters, f"lost{n}", settle=False)  # a settle that never came (it always comes; still bounded)
        clock.now += 0.001
    assert counters.sizes()["held"] == 2_000 and counters.sizes()["rate_live"] == 3 * 2_000
    clock.now += 361                                # past the window and the 360-s reservation
    run(counters, clock, 0, 2_048, 0.001)           # the periodic sweep runs every 1,024 admissions
    sizes = counters.sizes()
    assert sizes["held"] == 0 and sizes["rate_live"] == 0, "expired holds released, stale tickets forgotten"
    assert sizes["late"] == 4 * 2_000, "their late settles still count, once (like the Redis scripts)"
    assert counters.state(BUDGETS[0]).reserved_nano == 0


def test_admission_holds_one_entry_per_key_not_per_request(tmp_path: Path) -> None:
    cfg = config(tmp_path, teams={"ml": {"daily_usd": "1000000", "rpm": 10**9}},
                 limits={"deployments": {"a": {"rpm": 10**9}}})

    async def scenario() -> None:
        admission, (secret,) = await started(cfg, KeySpec(name="k", team="ml", rpm=10**9, tpm=10**12,
                                                          daily_usd=Decimal("1000000")))
        request = SimpleNamespace(headers={"authorization": f"Bearer {secret}"})  # as the hot-path server hands it
        for _ in range(5_000):
            key = await admission.authenticate(request)
            ticket = await admission.reserve(key, chat_request(), "chat")
            await admission.settle(ticket, row("0.001"), Decimal("0.001"))
        sizes = admission.counters.local.sizes()
        assert sizes["held"] == 0 and sizes["rate_live"] == 0 and sizes["expiries"] <= 65
        assert len(admission._verified) == 1 and not admission._settling
        await admission.stop()

    asyncio.run(scenario())

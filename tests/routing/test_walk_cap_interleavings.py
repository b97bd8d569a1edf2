"""Spillover's cap in the walker under concurrent walks: checked and taken in one step for every attempt.

Many walks share a capped self-hosted deployment and two paid ones that always have room. Hypothesis
draws how the walks interleave (when each starts, how long each attempt takes in loop turns, which fail,
retry, crash or are refused, which walks hedge, which are cancelled part way, how long an answer is held
before `release()`), and a monitor checks at every loop turn that the capped deployment never runs more
than its cap and no count is ever negative; at the end every count is back to 0.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.routing.support import config
from tollway.core.errors import GatewayError
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.hedging import HedgeBudget, HedgePolicy
from tollway.routing.router import RoutePlan
from tollway.routing.settings import HedgeSettings, SpilloverSettings
from tollway.routing.spillover import acquire, saturation
from tollway.routing.table import RouteTable
from tollway.routing.walk import Walk, _cancel
from tollway.upstream.calls import UpstreamFailure

CAP = 2
LOCAL = "local-vllm"
NAMES = [LOCAL, "cheap-text", "vision-mid"]
OUTCOMES = {
    "ok": None,
    "server": Failure(FailureKind.SERVER, "boom", 503),            # retried once, then the next candidate
    "timeout": Failure(FailureKind.TIMEOUT, "slow", None),
    "client": Failure(FailureKind.CLIENT_ERROR, "bad field", 400),  # straight back to the client
}


def deployments():
    cfg = config({"g": {"deployments": NAMES}},
                 retry={"max_attempts": 4, "retries_per_deployment": 1, "backoff_base_s": 0, "backoff_max_s": 0},
                 breaker={"consecutive_failures": 1000, "min_requests": 1000})
    return cfg, RouteTable(cfg, None, resolve_secrets=False).groups["g"].deployments


def capped_at(cap: int):
    """A group's spillover check with `max_in_flight: cap` (no backend gauges)."""
    settings = SpilloverSettings(max_in_flight=cap, waiting_above=None, kv_cache_above=None)
    return lambda dep: saturation(dep, settings, settings.scrape_interval_s)


spill = capped_at(CAP)


@dataclass
class Script:
    start_turns: int
    hedge_ms: float | None       # the group's hedge delay (None: no hedge)
    cancel_after: int | None   # loop turns after the start at which the client goes away
    hold_turns: int            # turns between the answer and release() (a stream being relayed)
    local: list[tuple[int, str]]  # the capped deployment's attempts in order: (turns it takes, outcome)
    paid_turns: int


class Upstream:
    """The fake attempt: counts what each deployment runs at once, as the upstream would see it."""

    def __init__(self, cap: int = CAP) -> None:
        self.cap = cap
        self.running = {name: 0 for name in NAMES}
        self.peak = dict(self.running)
        self.violations: list[str] = []

    def attempt(self, script: Script):
        local_steps = list(script.local)

        async def attempt(dep):
            turns, outcome = local_steps.pop(0) if dep.name == LOCAL and local_steps else (script.paid_turns, "ok")
            if outcome == "crash":
                raise ValueError("the payload could not be serialised")
            self.running[dep.name] += 1
            self.peak[dep.name] = max(self.peak[dep.name], self.running[dep.name])
            if dep.name == LOCAL and (self.running[LOCAL] > self.cap or dep.in_flight > self.cap):
                self.violations.append(f"{self.running[LOCAL]} running, in_flight {dep.in_flight}")
            try:
                for _ in range(turns):
                    await asyncio.sleep(0)
            finally:
                self.running[dep.name] -= 1
            failure = OUTCOMES[outcome]
            if failure is not None:
                raise UpstreamFailure(failure)
            return dep.name

        return attempt


async def one_request(cfg, deps, budget: HedgeBudget, script: Script, upstream: Upstream) -> str:
    for _ in range(script.start_turns):
        await asyncio.sleep(0)
    hedge = None
    if script.hedge_ms is not None:
        budget.earn()
        hedge = HedgePolicy(HedgeSettings(after_ms=script.hedge_ms), budget, True, lambda dep: (10, Decimal("0.00001")))
    walk = Walk(cfg.retry, asyncio.get_running_loop().time() + 30,
                RoutePlan(deps, "t", hedge=hedge, spill=capped_at(upstream.cap)))
    try:
        dep, _ = await walk.run("g", deps, upstream.attempt(script))
        for _ in range(script.hold_turns):
            await asyncio.sleep(0)
        return dep.name
    except (GatewayError, ValueError) as exc:
        return type(exc).__name__
    finally:
        walk.release()  # the handler's `finished`, once per request however it ended


async def with_cancel(task: asyncio.Task, after: int | None) -> None:
    if after is not None:
        for _ in range(after):
            await asyncio.sleep(0)
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def monitor(deps, stop: asyncio.Event, upstream: Upstream) -> None:
    while not stop.is_set():
        for dep in deps:
            if dep.in_flight < 0 or (dep.name == LOCAL and dep.in_flight > upstream.cap):
                upstream.violations.append(f"{dep.name} in_flight {dep.in_flight}")
        await asyncio.sleep(0)


def run_all(scripts: list[Script], cap: int = CAP) -> tuple[Upstream, list]:
    cfg, deps = deployments()
    upstream = Upstream(cap)

    async def main():
        budget = HedgeBudget(100)
        stop = asyncio.Event()
        watcher = asyncio.create_task(monitor(deps, stop, upstream))
        tasks = [asyncio.create_task(one_request(cfg, deps, budget, s, upstream)) for s in scripts]
        await asyncio.gather(*(with_cancel(t, s.cancel_after) for t, s in zip(tasks, scripts)))
        for _ in range(3):  # let cancelled racers finish unwinding
            await asyncio.sleep(0)
        stop.set()
        await watcher
        return [t.result() if not t.cancelled() else "cancelled" for t in tasks]

    results = asyncio.run(main())
    assert {d.name: d.in_flight for d in deps} == {name: 0 for name in NAMES}, "every slot given back exactly once"
    assert all(count == 0 for count in upstream.running.values())
    return upstream, results


local_attempt = st.tuples(st.integers(0, 4), st.sampled_from(["ok", "ok", "server", "timeout", "client", "crash"]))
script = st.builds(Script, start_turns=st.integers(0, 4), hedge_ms=st.sampled_from([None, 0.001, 5000]),
                   cancel_after=st.none() | st.integers(0, 12), hold_turns=st.integers(0, 4),
                   local=st.lists(local_attempt, max_size=3), paid_turns=st.integers(0, 4))


@settings(max_examples=300, deadline=None)
@given(st.lists(script, min_size=2, max_size=12))
def test_the_cap_holds_for_every_interleaving(scripts):
    upstream, results = run_all(scripts)
    assert upstream.violations == []
    assert upstream.peak[LOCAL] <= CAP


def test_five_concurrent_walks_with_a_hedge_that_never_fires_put_three_on_a_cap_of_three():
    """The reported case: a racer's slot must be counted before its task runs, not once it does."""
    hedged = Script(start_turns=0, hedge_ms=5000, cancel_after=None, hold_turns=0, local=[(20, "ok")], paid_turns=20)
    upstream, results = run_all([hedged] * 5, cap=3)
    assert sorted(results) == ["cheap-text", "cheap-text", LOCAL, LOCAL, LOCAL]
    assert upstream.peak[LOCAL] == 3 and upstream.violations == []


def test_a_retry_that_finds_the_deployment_full_spills_instead():
    cfg, deps = deployments()
    local = deps[0]
    upstream = Upstream()

    async def main():
        walk = Walk(cfg.retry, asyncio.get_running_loop().time() + 5, RoutePlan(deps, "t", spill=spill))

        async def attempt(dep):
            if dep is local:
                local.in_flight += CAP  # other requests fill it while this attempt fails and backs off
                raise UpstreamFailure(OUTCOMES["server"])
            return dep.name

        dep, _ = await walk.run("g", deps, attempt)
        walk.release()
        local.in_flight -= CAP
        return walk, dep

    walk, dep = asyncio.run(main())
    assert dep.name == "cheap-text"
    assert [(a.deployment.name, a.outcome) for a in walk.attempts] == [(LOCAL, "failover"), ("cheap-text", "ok")]
    assert all(d.in_flight == 0 for d in deps) and upstream.violations == []


def test_a_hedge_partner_is_never_a_full_deployment():
    cfg, deps = deployments()
    local, paid = deps[0], deps[1]
    order = [paid, local]  # the paid one first: the partner would be the capped one

    async def main():
        budget = HedgeBudget(100)
        budget.earn()
        hedge = HedgePolicy(HedgeSettings(after_ms=1), budget, False, lambda dep: (10, None))
        walk = Walk(cfg.retry, asyncio.get_running_loop().time() + 5, RoutePlan(order, "t", hedge=hedge, spill=spill))
        local.in_flight = CAP

        async def attempt(dep):
            await asyncio.sleep(0.05)
            return dep.name

        dep, _ = await walk.run("g", order, attempt)
        walk.release()
        local.in_flight -= CAP
        return walk, dep

    walk, dep = asyncio.run(main())
    assert dep is paid and walk.hedged is None, "the only other candidate was full: no hedge"
    assert all(d.in_flight == 0 for d in deps)


def test_a_deployment_full_with_nowhere_else_to_go_is_still_tried_as_the_last_resort():
    cfg, deps = deployments()
    local = deps[0]

    async def main():
        walk = Walk(cfg.retry, asyncio.get_running_loop().time() + 5, RoutePlan([local], "t", spill=spill))
        local.in_flight = CAP
        dep, _ = await walk.run("g", [local], lambda dep: asyncio.sleep(0, dep.name))
        over = local.in_flight
        walk.release()
        local.in_flight -= CAP
        return dep, over

    dep, over = asyncio.run(main())
    assert dep.name == LOCAL and over == CAP + 1
    assert local.in_flight == 0


def test_a_racer_cancelled_before_its_task_ran_gives_its_slot_back():
    """Its coroutine never runs (so its own handlers cannot release); the walk does, once."""
    cfg, deps = deployments()
    local = deps[0]
    called = []

    async def attempt(dep):
        called.append(dep.name)
        return dep.name

    async def main():
        walk = Walk(cfg.retry, asyncio.get_running_loop().time() + 5, RoutePlan(deps, "t", spill=spill))
        acquire(local)
        task = asyncio.create_task(walk._try_deployment(local, attempt, None))
        _cancel(task, local)
        _cancel(task, local)  # a second cancel (the race's `finally` after the loser's) gives nothing back again
        await asyncio.gather(task, return_exceptions=True)
        return task.cancelled()

    assert asyncio.run(main()) is True
    assert called == [] and local.in_flight == 0

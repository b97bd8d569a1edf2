"""The walker with a routing plan: hedge races, loser accounting, budget, residency binding, in-flight counts."""

import asyncio
from decimal import Decimal

import pytest

from tests.routing.support import config
from tollway.core.errors import GatewayError
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.hedging import HedgeBudget, HedgePolicy
from tollway.routing.router import RoutePlan
from tollway.routing.settings import HedgeSettings
from tollway.routing.table import RouteTable
from tollway.routing.walk import Walk
from tollway.upstream.calls import UpstreamFailure

NAMES = ["cheap-text", "vision-mid", "long-big"]


def setup(hedge_ms: float | None = 50, budget: float = 100):
    cfg = config({"g": {"deployments": NAMES}},
                 retry={"max_attempts": 4, "retries_per_deployment": 0, "backoff_base_s": 0, "backoff_max_s": 0})
    deps = RouteTable(cfg, None, resolve_secrets=False).groups["g"].deployments
    policy = None
    if hedge_ms is not None:
        hedge_budget = HedgeBudget(budget)
        hedge_budget.earn()
        policy = HedgePolicy(HedgeSettings(after_ms=hedge_ms), hedge_budget, True,
                             lambda dep: (1000, Decimal("0.0001")))
    return cfg, deps, policy


def run(cfg, deps, plan, script):
    """Each deployment answers after script[name] = (delay_s, outcome); a Failure outcome raises."""
    calls = []

    async def attempt(dep):
        calls.append(dep.name)
        delay, outcome = script[dep.name]
        await asyncio.sleep(delay)
        if isinstance(outcome, Failure):
            raise UpstreamFailure(outcome)
        return outcome

    async def main():
        walk = Walk(cfg.retry, asyncio.get_running_loop().time() + 10, plan)
        started = asyncio.get_running_loop().time()
        try:
            found = await walk.run("g", plan.deployments, attempt)
            result = (found[0].name, found[1])
        except GatewayError as exc:
            result = exc
        in_flight_before_release = {d.name: d.in_flight for d in deps}
        walk.release()
        return walk, result, asyncio.get_running_loop().time() - started, in_flight_before_release

    walk, result, took, held = asyncio.run(main())
    return walk, result, took, held, calls


def test_a_slow_first_deployment_is_raced_and_the_faster_wins():
    cfg, deps, policy = setup()
    plan = RoutePlan(deps, "test", hedge=policy)
    walk, result, took, held, calls = run(cfg, deps, plan, {"cheap-text": (2.0, "slow"), "vision-mid": (0.05, "fast"),
                                                            "long-big": (0.0, "unused")})
    assert result == ("vision-mid", "fast")
    assert took < 1.0, "the hedge answered long before the stalled first deployment"
    assert calls == ["cheap-text", "vision-mid"]
    assert walk.hedged is deps[1]
    outcomes = [(a.deployment.name, a.outcome, a.kind) for a in walk.attempts]
    assert outcomes == [("vision-mid", "ok", ""), ("cheap-text", "cancelled", "hedge_loser")]
    loser = walk.attempts[1].to_ledger()
    assert loser["cost_usd"] == "0.0001" and loser["prompt_tokens"] == 1000 and loser["jurisdiction"] == "cn"
    assert walk.extra_cost() == (Decimal("0.0001"), True)
    assert held == {"cheap-text": 0, "vision-mid": 1, "long-big": 0}, "only the winner is held until release"
    assert all(d.in_flight == 0 for d in deps)


def test_a_fast_first_deployment_is_not_hedged():
    cfg, deps, policy = setup(hedge_ms=500)
    walk, result, took, _, calls = run(cfg, deps, RoutePlan(deps, "t", hedge=policy),
                                       {"cheap-text": (0.01, "a"), "vision-mid": (0.0, "b"), "long-big": (0.0, "c")})
    assert result == ("cheap-text", "a") and calls == ["cheap-text"] and walk.hedged is None
    assert walk.extra_cost() == (Decimal(0), True)


def test_without_budget_there_is_no_hedge():
    cfg, deps, policy = setup(budget=10)  # one request earned 0.1 of a hedge
    walk, result, took, _, calls = run(cfg, deps, RoutePlan(deps, "t", hedge=policy),
                                       {"cheap-text": (0.3, "slow"), "vision-mid": (0.0, "fast"), "long-big": (0.0, "c")})
    assert result == ("cheap-text", "slow") and calls == ["cheap-text"] and took >= 0.3


def test_when_the_first_fails_during_the_race_the_hedge_carries_on():
    cfg, deps, policy = setup()
    fail = Failure(FailureKind.SERVER, "boom", 500)
    walk, result, _, _, calls = run(cfg, deps, RoutePlan(deps, "t", hedge=policy),
                                    {"cheap-text": (0.1, fail), "vision-mid": (0.3, "hedge"), "long-big": (0.0, "c")})
    assert result == ("vision-mid", "hedge")
    assert [(a.deployment.name, a.outcome) for a in walk.attempts] == [("cheap-text", "failover"), ("vision-mid", "ok")]


def test_when_both_racers_fail_the_walk_moves_on():
    cfg, deps, policy = setup()
    fail = Failure(FailureKind.SERVER, "boom", 500)
    walk, result, _, _, calls = run(cfg, deps, RoutePlan(deps, "t", hedge=policy),
                                    {"cheap-text": (0.1, fail), "vision-mid": (0.12, fail), "long-big": (0.0, "last")})
    assert result == ("long-big", "last")
    assert calls == ["cheap-text", "vision-mid", "long-big"]


def test_a_client_error_in_the_race_cancels_the_other_and_goes_back_to_the_client():
    cfg, deps, policy = setup()
    bad = Failure(FailureKind.CLIENT_ERROR, "bad field", 400)
    walk, result, _, _, _ = run(cfg, deps, RoutePlan(deps, "t", hedge=policy),
                                {"cheap-text": (1.0, "slow"), "vision-mid": (0.1, bad), "long-big": (0.0, "c")})
    assert isinstance(result, GatewayError) and result.status == 400
    assert all(d.in_flight == 0 for d in deps)


def test_the_plans_residency_binds_the_walk():
    cfg, deps, _ = setup(hedge_ms=None)
    plan = RoutePlan(deps, "t", residency=frozenset({"us"}))
    walk, result, _, _, calls = run(cfg, deps, plan, {n: (0.0, n) for n in NAMES})
    assert result == ("long-big", "long-big") and calls == ["long-big"]
    skipped = [(a.deployment.name, a.error) for a in walk.attempts if a.outcome == "skipped"]
    assert skipped == [("cheap-text", "jurisdiction cn is outside the residency policy"),
                       ("vision-mid", "jurisdiction sg is outside the residency policy")]


def test_routing_overhead_is_recorded_but_is_not_a_try():
    from tollway.routing.attempts import AttemptRecord

    cfg, deps, _ = setup(hedge_ms=None)
    overhead = AttemptRecord(deps[2], "routing_overhead", kind="classifier", cost_usd=Decimal("0.00002"),
                             prompt_tokens=120, completion_tokens=1)
    walk, result, _, _, _ = run(cfg, deps, RoutePlan(deps, "t", overhead=[overhead]), {n: (0.0, n) for n in NAMES})
    assert result == ("cheap-text", "cheap-text") and walk.tries == 1
    assert walk.attempts[0].to_ledger()["cost_usd"] == "0.00002"
    assert walk.extra_cost() == (Decimal("0.00002"), True)
    unpriced = AttemptRecord(deps[2], "routing_overhead", cost_usd=None)
    walk2, _, _, _, _ = run(cfg, deps, RoutePlan(deps, "t", overhead=[unpriced]), {n: (0.0, n) for n in NAMES})
    assert walk2.extra_cost() == (Decimal(0), False)


@pytest.mark.parametrize("streamed", [True, False])
def test_the_observed_percentile_sets_the_delay_once_there_are_enough_samples(streamed):
    _, deps, _ = setup(hedge_ms=None)
    settings = HedgeSettings(percentile=95, min_samples=20, fallback_ms=800)
    policy = HedgePolicy(settings, HedgeBudget(10), streamed, lambda dep: (0, None))
    dep = deps[0]
    assert policy.delay_s(dep) == 0.8
    for i in range(100):
        if streamed:
            dep.stats.observe_ttft((i + 1) / 1000)
        else:
            dep.stats.observe_reply((i + 1) / 1000, 1)
    assert policy.delay_s(dep) == pytest.approx(0.095)
    assert "p95 = 95 ms" in policy.describe(dep)


def test_a_deployment_that_filled_up_after_planning_is_tried_last():
    cfg, deps, _ = setup(hedge_ms=None)
    full = {"cheap-text"}
    plan = RoutePlan(deps, "t", spill=lambda dep: "full" if dep.name in full else None)
    walk, result, _, _, calls = run(cfg, deps, plan, {n: (0.0, n) for n in NAMES})
    assert result == ("vision-mid", "vision-mid") and calls == ["vision-mid"]
    full.update(NAMES)  # everything saturated: the configured order stands
    walk, result, _, _, calls = run(cfg, deps, plan, {n: (0.0, n) for n in NAMES})
    assert result == ("cheap-text", "cheap-text")


def test_concurrent_walks_see_each_others_in_flight_attempts():
    cfg, deps, _ = setup(hedge_ms=None)
    plan = RoutePlan(deps, "t", spill=lambda dep: "full" if dep.name == "cheap-text" and dep.in_flight >= 2 else None)

    async def attempt(dep):
        await asyncio.sleep(0.1)
        return dep.name

    async def main():
        walks = [Walk(cfg.retry, asyncio.get_running_loop().time() + 5, plan) for _ in range(4)]
        results = await asyncio.gather(*(w.run("g", deps, attempt) for w in walks))
        for walk in walks:
            walk.release()
        return sorted(dep.name for dep, _ in results)

    assert asyncio.run(main()) == ["cheap-text", "cheap-text", "vision-mid", "vision-mid"]
    assert all(d.in_flight == 0 for d in deps)

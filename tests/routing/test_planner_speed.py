"""The planner's shortcuts for speed decide exactly what the long way decides, and share nothing mutable.

The residency stage is remembered per (group, key restriction, header), a fixed-order priority group is
ranked without a RankInput, and live-statistics windows keep their order only once someone reads them;
each test compares the shortcut with the general path it replaces.
"""

from __future__ import annotations

import random

from tests.routing.support import decide, names, planner, request, table
from tollway.accounting.tickets import Key
from tollway.routing.live_stats import WINDOW, SampleWindow
from tollway.routing.planner import RESIDENCY_ANSWERS_KEPT
from tollway.routing.strategies.base import RankInput
from tollway.routing.strategies.registry import STRATEGIES

ALL = ["cheap-text", "vision-mid", "long-big", "eu-model", "local-vllm"]


def test_a_remembered_residency_answer_is_the_same_and_a_request_cannot_change_it():
    tbl = table({"g": {"deployments": ALL}})
    key = Key(id="k1", residency=frozenset({"eu", "us", "self-hosted"}))
    first = decide(tbl, request(), key, {"x-tollway-residency": "eu, self-hosted"})
    first.candidates.clear()
    first.removed.clear()
    first.ordered.clear()
    again = decide(tbl, request(), key, {"x-tollway-residency": "eu, self-hosted"})
    assert names(again) == ["eu-model", "local-vllm"]
    assert {r.deployment.name for r in again.removed} == {"cheap-text", "vision-mid", "long-big"}
    assert "key k1: eu, self-hosted, us" in again.policy.describe()


def test_the_residency_answer_follows_the_key_id_and_the_header():
    tbl = table({"g": {"deployments": ALL}})
    restricted = frozenset({"eu"})
    assert names(decide(tbl, request(), Key(id="a", residency=restricted))) == ["eu-model"]
    other = decide(tbl, request(), Key(id="b", residency=restricted))
    assert "key b: eu" in other.policy.describe(), "the policy names the key that asked"
    assert names(decide(tbl, request(), Key(id="a", residency=restricted), {"x-tollway-residency": "cn"})) == []
    assert names(decide(tbl, request(), Key(id="a"), {"x-tollway-residency": "cn"})) == ["cheap-text"]
    assert names(decide(tbl, request(), Key(id="a"))) == ALL


def test_remembered_residency_answers_are_bounded():
    tbl = table({"g": {"deployments": ALL}})
    for n in range(RESIDENCY_ANSWERS_KEPT * 3):
        decide(tbl, request(), Key(id=f"key-{n}", residency=frozenset({"eu"})))
    assert 0 < len(tbl.groups["g"].residency_answers) <= RESIDENCY_ANSWERS_KEPT


def test_a_fixed_order_group_ranks_as_the_priority_strategy_does():
    tbl = table({"g": {"deployments": ALL}})
    decision = decide(tbl, request())
    plan = planner()
    long_way = STRATEGIES["priority"].rank(RankInput(tbl.groups["g"], decision.candidates, decision.features, {}, plan.pricer, None,
                                  plan.rng))
    assert decision.ordered == long_way.ordered and decision.reason == long_way.reason
    assert decision.scores == long_way.scores


def test_a_window_read_late_or_early_gives_the_same_percentiles():
    rng = random.Random(3)
    early, late, values = SampleWindow(), SampleWindow(), []
    early.percentile(50)
    for n in range(3 * WINDOW):
        value = rng.choice([rng.random(), 0.25, float(n % 5)])
        early.add(value)
        late.add(value)
        values = [*values, value][-WINDOW:]
        if n % 17 == 0 or n > 2 * WINDOW:
            ordered = sorted(values)
            for p in (1, 50, 95, 99, 100):
                rank = max(1, -(-len(ordered) * p // 100))
                assert early.percentile(p) == ordered[rank - 1]
    assert len(early) == len(late) == WINDOW
    assert [late.percentile(p) for p in (1, 50, 99)] == [early.percentile(p) for p in (1, 50, 99)]

"""The strategy registry: each strategy's keys belong to it alone, the config's words come from the
registry, and a strategy added as one module plus its registration is served by the planner, explain and
replay without a change elsewhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.routing.support import config, decide, names, request, table
from tollway.routing.explain_command import explanation
from tollway.routing.settings import RouteGroup
from tollway.routing.strategies import registry
from tollway.routing.strategies.base import Ranking, RankInput, Strategy, StrategyOptions
from tollway.routing.table import RouteGroupEntry

ALL = ["cheap-text", "vision-mid", "long-big"]


def test_every_registered_strategy_has_its_name_and_its_own_keys():
    owners: dict[str, str] = {}
    for name, strategy in registry.STRATEGIES.items():
        assert strategy.name == name and issubclass(strategy.options, StrategyOptions)
        for key in strategy.options.model_fields:
            assert key not in owners, f"{key} is claimed by both {owners.get(key)} and {name}"
            owners[key] = name
    assert owners == registry.OPTION_OWNERS
    assert set(owners).isdisjoint(RouteGroup.model_fields), "a strategy key is also a key of every group"


def test_mistakes_in_the_common_keys_and_the_strategy_keys_are_reported_together():
    with pytest.raises(ValidationError) as caught:
        config({"g": {"deployments": ["cheap-text"], "strategy": "fastest", "explore": 0.9, "residency": []}})
    where = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert where == {"route_groups.g.explore", "route_groups.g.residency"}


def test_a_group_keeps_its_strategy_object_and_options():
    tbl = table({"w": {"deployments": ALL, "strategy": "weighted", "weights": {"vision-mid": 3},
                       "sticky_header": "x-team"},
                 "p": {"deployments": ALL}, "pz": {"deployments": ALL, "prefer_strong_in": {"zh": 0.5}}})
    weighted = tbl.groups["w"]
    assert weighted.strategy is registry.STRATEGIES["weighted"]
    assert weighted.strategy_options.weights == {"vision-mid": 3.0}  # type: ignore[attr-defined]
    assert weighted.fixed_order is None and tbl.groups["pz"].fixed_order is None
    assert tbl.groups["p"].fixed_order == "priority: configured order"
    assert "vision-mid 3" in weighted.strategy.describe(weighted) and "x-team" in weighted.strategy.describe(weighted)


def test_each_strategy_describes_how_it_ranks_for_explain():
    tbl = table({
        "priority": {"deployments": ALL},
        "cheapest": {"deployments": ALL, "strategy": "cheapest", "expected_output_tokens": 99},
        "fastest": {"deployments": ALL, "strategy": "fastest", "slo_p99_ttft_ms": 800},
        "weighted": {"deployments": ALL, "strategy": "weighted", "weights": {"cheap-text": 9, "long-big": 1}},
        "tiers": {"deployments": ALL, "strategy": "tiers", "tiers": {"low": ["cheap-text"], "default": ["long-big"]}},
    })
    lines = {name: explanation(decide(tbl, request(name)))["ranking"] for name in tbl.groups}
    assert lines == {
        "priority": "priority: configured order",
        "cheapest": "cheapest: lowest expected cost first (prompt estimate + max_tokens, else 99 output tokens), "
                    "ties by expected latency",
        "fastest": "fastest: lowest expected latency first (each measured 3 times first, p99 TTFT above 800 ms "
                   "demoted), 5% of requests explore another candidate",
        "weighted": "weighted: cheap-text 9, long-big 1; a caller stays on one arm by `user`, else the "
                    "x-tollway-sticky header",
        "tiers": "tiers: low -> cheap-text; default -> long-big; graded by the heuristic (medium from 0.3, "
                 "high from 0.6)",
    }


class ReversedOptions(StrategyOptions):
    skip_first: bool = False


class Reversed(Strategy):
    """A strategy a test adds: the configured order backwards."""

    name = "reversed"
    options = ReversedOptions

    def rank(self, inp: RankInput) -> Ranking:
        ordered = list(reversed(inp.candidates))
        return Ranking(ordered, f"reversed: {ordered[0].name}", {d.name: f"#{i}" for i, d in enumerate(ordered)})

    def describe(self, group: RouteGroupEntry) -> str:
        return "reversed: the configured order backwards"


@pytest.fixture
def with_reversed(monkeypatch):
    monkeypatch.setitem(registry.STRATEGIES, "reversed", Reversed())
    monkeypatch.setitem(registry.OPTION_OWNERS, "skip_first", "reversed")


def test_a_registered_strategy_is_configured_planned_and_explained(with_reversed):
    tbl = table({"g": {"deployments": ALL, "strategy": "reversed", "skip_first": True}})
    decision = decide(tbl, request())
    assert names(decision) == ["long-big", "vision-mid", "cheap-text"] and decision.reason == "reversed: long-big"
    shown = explanation(decision)
    assert shown["strategy"] == "reversed" and shown["ranking"] == "reversed: the configured order backwards"
    replayed = tbl.groups["g"].strategy.replay(tbl.groups["g"], decision)
    assert [(d.name, str(share)) for d, share in replayed.arms] == [("long-big", "1")] and replayed.approximate is None
    with pytest.raises(ValidationError, match="skip_first only applies to strategy: reversed"):
        config({"g": {"deployments": ALL, "skip_first": True}})


def test_an_unregistered_strategy_is_refused_with_the_registered_names(with_reversed):
    with pytest.raises(ValidationError, match="Input should be 'priority', 'cheapest', 'fastest', 'weighted', "
                                              "'tiers' or 'reversed'"):
        config({"g": {"deployments": ALL, "strategy": "backwards"}})

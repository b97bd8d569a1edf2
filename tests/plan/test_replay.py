"""`tollway replay`'s engine on ledgers of known rows: every expected figure is computed by hand here.

Prices are per million tokens and given as explicit `price:` overrides in the candidate, so a cost is
(uncached prompt x input + cached x cached_input + cache writes x cache_write + completion x output) / 1e6.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests.plan.support import CHEAP, DAY1, DAY2, PROVIDERS, candidate_file, known_rows, logged, write_ledger
from tollway.ledger.schema import LedgerRow
from tollway.plan.replay import load_candidate, replay_ledger
from tollway.plan.scenario import ScenarioError

M = Decimal(1_000_000)


def replay(tmp_path: Path, rows: list[LedgerRow], groups: dict, deployments: dict | None = None, **options):
    ledger = write_ledger(tmp_path / "ledger.db", rows)
    return replay_ledger(load_candidate(candidate_file(tmp_path, groups, deployments)), str(ledger), **options)


def test_cheaper_policy_replays_to_the_hand_computed_cost(tmp_path):
    totals = replay(tmp_path, known_rows(), {"chat": {"deployments": ["dear", "cheap"], "strategy": "cheapest",
                                                      "aliases": ["gpt-4o-mini"]}})
    # r1 on cheap: 600 x 0.10 + 400 x 0.01 + 200 x 0.40 = 144
    # r2 on cheap (no cache_write rate: writes cost input): 1900 x 0.10 + 100 x 0.10 + 500 x 0.40 = 400
    # r3 needs vision: only dear can: 500 x 1 + 100 x 2 = 700
    r1, r2, r3 = Decimal(144) / M, Decimal(400) / M, Decimal(700) / M
    current = Decimal("0.0009") + Decimal("0.003") + Decimal("0.0007")
    total = totals.total
    assert (total.requests, total.served, total.compared) == (3, 3, 3)
    assert total.candidate_usd == r1 + r2 + r3 == Decimal("0.001244")
    assert total.compared_current_usd == total.current_usd == current
    assert total.difference_usd == Decimal("0.001244") - current == Decimal("-0.003356")
    assert set(totals.by_group) == {"chat"}  # the alias's request counts in its group
    day1, day2 = totals.by_day["2026-10-05"], totals.by_day["2026-10-06"]
    assert (day1.requests, day1.candidate_usd, day1.compared_current_usd) == (2, r1 + r2, Decimal("0.0039"))
    assert (day2.requests, day2.candidate_usd, day2.difference_usd) == (1, r3, Decimal(0))


def test_failed_requests_only_when_asked_and_shadow_copies_never(tmp_path):
    totals = replay(tmp_path, known_rows(), {"chat": {"deployments": ["cheap", "dear"], "aliases": ["gpt-4o-mini"]}},
                    include_failed=True, keep_rows=True)
    assert [d.request.id for d in totals.decisions] == ["r1", "r2", "r3", "r4"]
    failed = totals.decisions[-1]
    assert failed.arms[0].deployment == "cheap" and failed.cost_usd == Decimal(30) / M  # 300 x 0.10
    assert totals.total.current_usd == Decimal("0.0049")


def test_unserveable_by_capability_context_residency_and_model(tmp_path):
    rows = [
        logged("fits", DAY1, prompt=9000, cost="0.01"),                          # 9000 + 1 <= 10000
        logged("image", DAY1, needs=("vision",), cost="0.02"),
        logged("long", DAY1, prompt=9900, max_tokens=200, cost="0.03"),         # 9900 + 200 > 10000
        logged("eu-only", DAY2, residency=["eu"], cost="0.04"),
        logged("gone", DAY2, model="retired-model", cost="0.05"),
        logged("tools", DAY2, needs=("tools",), residency=["cn", "eu"], cost="0.06"),
    ]
    totals = replay(tmp_path, rows, {"chat": {"deployments": ["cheap"]}}, {"cheap": CHEAP}, keep_rows=True)
    why = {d.request.id: d.unserveable for d in totals.decisions}
    assert why == {"fits": None, "image": "capability", "long": "context", "eu-only": "residency",
                   "gone": "model", "tools": None}
    details = {d.request.id: d.detail for d in totals.decisions}
    assert "image input" in details["image"] and "10000" in details["long"] and "eu" in details["eu-only"]
    total = totals.total
    assert dict(total.unserveable) == {"capability": 1, "context": 1, "residency": 1, "model": 1}
    assert (total.requests, total.served, total.compared) == (6, 2, 2)
    # fits: 9000 x 0.10 + 200 x 0.40 = 980; tools: 1000 x 0.10 + 200 x 0.40 = 180
    assert total.candidate_usd == Decimal(1160) / M
    assert total.compared_current_usd == Decimal("0.07")
    assert total.current_usd == Decimal("0.21")   # what all six cost as logged
    assert set(totals.by_group) == {"chat", "retired-model"}
    assert totals.by_group["retired-model"].unserveable["model"] == 1
    assert dict(totals.by_day["2026-10-05"].unserveable) == {"capability": 1, "context": 1}


def test_rows_without_features_replay_as_needing_nothing_and_are_counted(tmp_path):
    rows = [logged("old", DAY1, features={}, cost="0.001"), logged("new", DAY1, cost="0.001")]
    totals = replay(tmp_path, rows, {"chat": {"deployments": ["cheap"]}}, {"cheap": CHEAP})
    assert totals.without_features == 1
    assert totals.total.served == 2


def test_weighted_group_costs_the_weight_average_of_its_arms(tmp_path):
    rows = [logged("w", DAY1, prompt=1000, completion=1000)]
    totals = replay(tmp_path, rows, {"chat": {"deployments": ["cheap", "dear"], "strategy": "weighted",
                                              "weights": {"cheap": 3, "dear": 1}}}, keep_rows=True)
    on_cheap = Decimal(1000 * Decimal("0.10") + 1000 * Decimal("0.40")) / M  # 500
    on_dear = Decimal(1000 * 1 + 1000 * 2) / M                               # 3000
    decision = totals.decisions[0]
    assert [(a.deployment, a.share) for a in decision.arms] == [("cheap", Decimal("0.75")), ("dear", Decimal("0.25"))]
    assert decision.cost_usd == (3 * on_cheap + on_dear) / 4 == Decimal("0.001125")
    assert decision.detail == "weighted: expected over cheap 75%, dear 25%"
    assert any("weighted" in note for note in totals.notes["chat"])


def test_weighted_arm_filtered_out_leaves_the_other(tmp_path):
    rows = [logged("img", DAY1, prompt=1000, completion=1000, needs=("vision",))]
    totals = replay(tmp_path, rows, {"chat": {"deployments": ["cheap", "dear"], "strategy": "weighted",
                                              "weights": {"cheap": 3, "dear": 1}}}, keep_rows=True)
    decision = totals.decisions[0]
    assert [(a.deployment, a.share) for a in decision.arms] == [("dear", Decimal(1))]
    assert decision.cost_usd == Decimal(3000) / M


def test_fastest_learns_latency_from_the_ledger_in_time_order(tmp_path):
    fast, slow = {**CHEAP}, {**CHEAP, "price": {"input": "1", "output": "1"}}
    rows = []
    for i in range(3):  # history: slow answered in 900 ms, fast in 100 ms
        rows.append(logged(f"s{i}", DAY1 + timedelta(minutes=2 * i), deployment="slow", ttft_ms=900, streamed=1))
        rows.append(logged(f"f{i}", DAY1 + timedelta(minutes=2 * i + 1), deployment="fast", ttft_ms=100, streamed=1))
    rows.append(logged("later", DAY1 + timedelta(hours=1), deployment="slow", ttft_ms=900, streamed=1))
    totals = replay(tmp_path, rows, {"chat": {"deployments": ["slow", "fast"], "strategy": "fastest"}},
                    {"slow": slow, "fast": fast}, keep_rows=True)
    decisions = {d.request.id: d for d in totals.decisions}
    assert decisions["s0"].approximate is not None  # nothing measured yet: cannot be ranked faithfully
    assert decisions["later"].approximate is None
    assert decisions["later"].arms[0].deployment == "fast"
    assert totals.total.approximate == sum(1 for d in totals.decisions if d.approximate)


def test_tiers_decisions_are_flagged_approximate(tmp_path):
    rows = [logged("short", DAY1, prompt=100), logged("long", DAY1, prompt=9000)]
    groups = {"chat": {"deployments": ["cheap", "dear"], "strategy": "tiers",
                       "tiers": {"low": ["cheap"], "high": ["dear"], "default": ["dear"]}}}
    totals = replay(tmp_path, rows, groups, keep_rows=True)
    picks = {d.request.id: d.arms[0].deployment for d in totals.decisions}
    assert picks["short"] == "cheap"
    assert all(d.approximate and "tiers" in d.approximate for d in totals.decisions)


def test_candidate_price_at_the_rows_own_time(tmp_path):
    """A catalog entry whose price changes on day 2: each row is costed at the price then in force."""
    source = {"source": "test", "verified": True}
    catalog = [{"provider": "deepseek", "model": "dated-model", "context_window": 64000,
                "prices": [{"effective_from": "2026-01-01", "input": "1", "output": "1", **source},
                           {"effective_from": "2026-10-06", "input": "2", "output": "2", **source}]}]
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump({"providers": PROVIDERS, "catalog": catalog,
                                    "deployments": {"dated": {"provider": "deepseek", "model": "dated-model"}},
                                    "route_groups": {"chat": {"deployments": ["dated"]}}}))
    ledger = write_ledger(tmp_path / "ledger.db", [logged("a", DAY1, prompt=1000, completion=0),
                                                   logged("b", DAY2, prompt=1000, completion=0)])
    totals = replay_ledger(load_candidate(path), str(ledger))
    assert totals.by_day["2026-10-05"].candidate_usd == Decimal(1000) / M
    assert totals.by_day["2026-10-06"].candidate_usd == Decimal(2000) / M


def test_unknown_logged_cost_is_left_out_of_the_comparison(tmp_path):
    rows = [logged("known", DAY1, cost="0.01"), logged("unknown", DAY1, cost="0", priced=0)]
    totals = replay(tmp_path, rows, {"chat": {"deployments": ["cheap"]}}, {"cheap": CHEAP})
    assert (totals.total.compared, totals.total.current_unpriced) == (1, 1)
    assert totals.total.compared_current_usd == Decimal("0.01")


def test_since_and_until_select_a_window(tmp_path):
    totals = replay(tmp_path, known_rows(), {"chat": {"deployments": ["cheap", "dear"], "aliases": ["gpt-4o-mini"]}},
                    since=DAY1 + timedelta(minutes=30), until=DAY2 + timedelta(minutes=1))
    assert totals.total.requests == 2 and set(totals.by_day) == {"2026-10-05", "2026-10-06"}


def test_candidate_deployment_without_any_price_is_refused(tmp_path):
    unknown = {"provider": "deepseek", "model": "no-such-model"}
    path = candidate_file(tmp_path, {"chat": {"deployments": ["mystery"]}}, {"mystery": unknown})
    with pytest.raises(ScenarioError, match=r"deployments\.mystery\.model: 'no-such-model' is not in the catalog"):
        load_candidate(path)


def test_malformed_features_name_the_row(tmp_path):
    rows = [logged("bad", DAY1, features={"needs": "vision"})]
    with pytest.raises(ScenarioError, match="row bad: request_features"):
        replay(tmp_path, rows, {"chat": {"deployments": ["cheap"]}}, {"cheap": CHEAP})

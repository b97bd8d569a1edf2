"""The routing pipeline on its own: filters, residency, strategies and spillover, with no network."""

import time
from decimal import Decimal

import pytest

from tests.routing.support import DEPLOYMENTS, decide, names, planner, request, table
from tollway.accounting.tickets import Key
from tollway.core.errors import GatewayError
from tollway.routing.spillover import BackendLoad

ALL = ["cheap-text", "vision-mid", "long-big", "eu-model", "local-vllm"]
IMAGE = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]


def group(**options):
    return table({"g": {"deployments": options.pop("deployments", ALL), **options}})


# --- residency -------------------------------------------------------------------------------------------

def test_residency_is_the_intersection_of_key_group_and_header():
    tbl = group(residency=["eu", "self-hosted", "us"])
    key = Key(id="k1", residency=frozenset({"eu", "self-hosted"}))
    decision = decide(tbl, request(), key, {"x-tollway-residency": "self-hosted, cn"})
    assert names(decision) == ["local-vllm"]
    assert decision.policy.allowed == {"self-hosted"}
    removed = {r.deployment.name: r.filter for r in decision.removed}
    assert removed == {"cheap-text": "residency", "vision-mid": "residency", "long-big": "residency",
                       "eu-model": "residency"}


def test_a_header_cannot_widen_the_keys_policy():
    decision = decide(group(), request(), Key(id="k1", residency=frozenset({"eu"})), {"x-tollway-residency": "cn,eu,us"})
    assert names(decision) == ["eu-model"]


def test_nothing_allowed_is_a_503_naming_the_policy_and_what_it_excluded():
    tbl = group(deployments=["cheap-text", "vision-mid"])
    decision = decide(tbl, request(), Key(id="k9", residency=frozenset({"eu"})))
    error = decision.error
    assert error is not None and error.status == 503 and error.code == "residency_unavailable"
    assert "key k9: eu" in error.message
    assert "cheap-text (cn)" in error.message and "vision-mid (sg)" in error.message
    assert decision.ordered == []


def test_disjoint_sources_allow_nothing():
    decision = decide(group(residency=["cn"]), request(), headers={"x-tollway-residency": "eu"})
    assert decision.error is not None and decision.error.status == 503
    assert "route group g: cn" in decision.error.message and "x-tollway-residency: eu" in decision.error.message


@pytest.mark.parametrize("value", ["", " , ", "eu,,us"])
def test_a_malformed_residency_header_is_the_clients_400(value):
    with pytest.raises(GatewayError) as caught:
        decide(group(), request(), headers={"x-tollway-residency": value})
    assert caught.value.status == 400 and caught.value.param == "x-tollway-residency"


def test_the_shadow_copy_is_bound_by_residency_too():
    tbl = group(deployments=["eu-model"], shadow={"deployment": "cheap-text", "sample": 1.0})
    decision = decide(tbl, request(), headers={"x-tollway-residency": "eu"})
    assert decision.shadow is None
    assert any("shadow copy to cheap-text skipped" in note for note in decision.notes)
    assert decide(tbl, request()).shadow is tbl.deployments["cheap-text"]


# --- capability and context filters --------------------------------------------------------------------

def test_images_need_vision_tools_need_tools_json_needs_json():
    tbl = group()
    decision = decide(tbl, request(content=IMAGE))
    assert names(decision) == ["vision-mid", "long-big", "local-vllm"]  # local-vllm: capabilities unknown, kept
    assert {r.deployment.name for r in decision.removed} == {"cheap-text", "eu-model"}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert "eu-model" in names(decide(tbl, request(tools=tools)))
    decision = decide(tbl, request(response_format={"type": "json_object"}))
    assert "eu-model" not in names(decision)
    assert [r.reason for r in decision.removed] == ["cannot handle JSON output (response_format)"]


def test_no_capable_deployment_is_a_400_that_says_what_is_missing():
    decision = decide(group(deployments=["cheap-text", "eu-model"]), request(content=IMAGE))
    assert decision.error is not None and decision.error.status == 400
    assert decision.error.code == "unsupported_capability"
    assert "image input" in decision.error.message and "cheap-text" in decision.error.message


def test_prompt_plus_max_tokens_must_fit_the_window():
    tbl = group(deployments=["cheap-text", "long-big"])
    long_text = "word " * 4000  # ~5000 tokens
    decision = decide(tbl, request(content=long_text))
    assert names(decision) == ["long-big"]
    assert decision.removed[0].filter == "context"
    assert names(decide(tbl, request(content="short", max_tokens=3999))) == ["long-big"]
    assert names(decide(tbl, request(content="short", max_tokens=100))) == ["cheap-text", "long-big"]


def test_when_nothing_fits_by_estimate_the_largest_windows_are_kept():
    decision = decide(group(deployments=["cheap-text", "vision-mid"]), request(content="word " * 4000))
    assert decision.error is None
    assert names(decision) == ["cheap-text", "vision-mid"]  # both 4000: the upstream decides
    assert any("fit no window" in note for note in decision.notes)


# --- strategies ----------------------------------------------------------------------------------------

def test_cheapest_picks_the_cheapest_capable_deployment_for_text_image_and_long_context():
    tbl = group(strategy="cheapest", deployments=["long-big", "vision-mid", "cheap-text"])
    assert names(decide(tbl, request()))[0] == "cheap-text"
    assert names(decide(tbl, request(content=IMAGE)))[0] == "vision-mid"
    assert names(decide(tbl, request(content="word " * 4000))) == ["long-big"]
    decision = decide(tbl, request(content="hello", max_tokens=100))
    assert decision.reason.startswith("cheapest: cheap-text $")
    assert names(decision) == ["cheap-text", "vision-mid", "long-big"]


def test_cheapest_expected_cost_is_exact_and_uses_the_observed_cache_share():
    tbl = group(strategy="cheapest", deployments=["cheap-text", "vision-mid"])
    from datetime import datetime, timezone

    from tollway.routing.strategies.cheapest import expected_cost

    pricer = planner().pricer
    dep = tbl.deployments["cheap-text"]
    now = datetime.now(timezone.utc)
    assert expected_cost(dep, 1000, 200, pricer, now) == Decimal("0.000180")  # 1000 x 0.10 + 200 x 0.40, per M
    dep.stats.cache_hit_ratio = 0.5  # cached_input defaults to the input price in an override without it
    assert expected_cost(dep, 1000, 200, pricer, now) == Decimal("0.000180")


def test_cheapest_breaks_ties_by_observed_latency():
    twin = {**DEPLOYMENTS["cheap-text"], "provider": "qwen"}
    tbl = table({"g": {"deployments": ["cheap-text", "twin"], "strategy": "cheapest"}}, {"twin": twin})
    assert names(decide(tbl, request())) == ["cheap-text", "twin"]  # same price, nothing measured: config order
    for _ in range(3):
        tbl.deployments["cheap-text"].stats.observe_ttft(0.5)
        tbl.deployments["twin"].stats.observe_ttft(0.1)
    decision = decide(tbl, request())
    assert names(decision) == ["twin", "cheap-text"]
    assert decision.scores["twin"].endswith("~0.10s")


def test_chinese_requests_prefer_deployments_strong_in_chinese_by_the_configured_weight():
    tbl = group(strategy="cheapest", deployments=["eu-model", "vision-mid"], prefer_strong_in={"zh": 0.7})
    english = request(content="Please summarise this paragraph about the weather in spring.")
    chinese = request(content="请帮我总结一下这段关于春天天气的文字，并给出三个要点。")
    assert names(decide(tbl, english)) == ["vision-mid", "eu-model"]  # 0.50/1.50 beats 1.00/3.00 anyway
    tbl2 = group(strategy="cheapest", deployments=["cheap-text", "vision-mid"], prefer_strong_in={"zh": 0.5})
    # cheap-text is strong in zh too: both get the discount, cost decides
    assert names(decide(tbl2, chinese))[0] == "cheap-text"
    tbl3 = group(deployments=["eu-model", "long-big", "vision-mid"], prefer_strong_in={"zh": 0.3})
    assert names(decide(tbl3, chinese)) == ["vision-mid", "eu-model", "long-big"]
    assert names(decide(tbl3, english)) == ["eu-model", "long-big", "vision-mid"]
    assert "strong in zh first" in decide(tbl3, chinese).reason


def test_the_preference_weight_can_outweigh_price():
    cheap_twin = {**DEPLOYMENTS["eu-model"], "price": {"input": "0.05", "output": "0.05"}}
    tbl = table({"g": {"deployments": ["cheap-twin", "vision-mid"], "strategy": "cheapest",
                       "prefer_strong_in": {"zh": 0.99}}}, {"cheap-twin": cheap_twin})
    chinese = request(content="请用中文详细解释一下这个问题的答案是什么，谢谢你的帮助。")
    decision = decide(tbl, chinese)
    assert names(decision) == ["vision-mid", "cheap-twin"]  # ~28x the price, but 100x the preference
    assert "x0.01 preference" in decision.scores["vision-mid"]
    assert names(decide(tbl, request(content="Explain the answer to this question, thank you.")))[0] == "cheap-twin"


def test_fastest_measures_each_deployment_first_then_follows_the_ewma():
    tbl = group(strategy="fastest", deployments=["cheap-text", "vision-mid", "eu-model"], explore=0.0)
    a, b, c = (tbl.deployments[n] for n in ("cheap-text", "vision-mid", "eu-model"))
    assert names(decide(tbl, request()))[0] == "cheap-text"  # nothing measured: warm-up in order
    for dep, ttft in ((a, 0.3), (b, 0.1), (c, 0.2)):
        for _ in range(3):
            dep.stats.observe_ttft(ttft)
    assert names(decide(tbl, request())) == ["vision-mid", "eu-model", "cheap-text"]
    b.stats.observe_ttft(1.5)  # vision-mid slows down: one sample moves its EWMA past eu-model
    assert names(decide(tbl, request()))[0] == "eu-model"


def test_fastest_demotes_deployments_whose_p99_breaks_the_slo():
    tbl = group(strategy="fastest", deployments=["cheap-text", "vision-mid"], explore=0.0, slo_p99_ttft_ms=500)
    fast_tail, steady = tbl.deployments["cheap-text"], tbl.deployments["vision-mid"]
    for i in range(40):
        fast_tail.stats.observe_ttft(2.0 if i == 5 else 0.05)  # fast on average, one stall in 40: p99 = 2 s
        steady.stats.observe_ttft(0.3)
    decision = decide(tbl, request())
    assert names(decision) == ["vision-mid", "cheap-text"]
    assert "demoted: p99 above SLO 500 ms" in decision.scores["cheap-text"]


def test_fastest_explores_a_share_of_requests():
    tbl = group(strategy="fastest", deployments=["cheap-text", "vision-mid"], explore=0.2)
    for dep, ttft in (("cheap-text", 0.1), ("vision-mid", 0.5)):
        for _ in range(3):
            tbl.deployments[dep].stats.observe_ttft(ttft)
    plan = planner(seed=7)
    firsts = [names(decide(tbl, request(), plan=plan))[0] for _ in range(2000)]
    share = firsts.count("vision-mid") / len(firsts)
    assert 0.16 < share < 0.24


def test_weighted_splits_by_weight_and_keeps_each_user_on_one_arm():
    tbl = group(strategy="weighted", deployments=["cheap-text", "vision-mid", "eu-model"],
                weights={"cheap-text": 80, "vision-mid": 20})
    plan = planner()
    arms = [names(decide(tbl, request(user=f"user-{i}"), plan=plan))[0] for i in range(10000)]
    share = arms.count("vision-mid") / len(arms)
    assert 0.185 < share < 0.215  # 20% +- 4 standard deviations of a binomial over 10000
    assert "eu-model" not in arms  # weight 0: a fallback only
    for i in range(50):
        first = names(decide(tbl, request(user=f"user-{i}"), plan=plan))
        assert all(names(decide(tbl, request(user=f"user-{i}"), plan=plan)) == first for _ in range(5))
        assert first[-1] == "eu-model"


def test_weighted_is_sticky_by_header_when_the_body_has_no_user():
    tbl = group(strategy="weighted", deployments=["cheap-text", "vision-mid"], weights={"cheap-text": 1, "vision-mid": 1},
                sticky_header="x-team")
    plan = planner()
    seen = {names(decide(tbl, request(), headers={"X-Team": "blue"}, plan=plan))[0] for _ in range(30)}
    assert len(seen) == 1
    decision = decide(tbl, request(), headers={"x-team": "blue"}, plan=plan)
    assert "sticky by x-team" in decision.reason
    random_arms = {names(decide(tbl, request(), plan=plan))[0] for _ in range(200)}
    assert random_arms == {"cheap-text", "vision-mid"}


def test_tiers_route_by_complexity_with_the_rest_as_fallback():
    tbl = group(strategy="tiers", deployments=["cheap-text", "vision-mid", "long-big"],
                tiers={"low": ["cheap-text"], "high": ["long-big"], "default": ["vision-mid"]})
    low = decide(tbl, request(content="hi, how are you?"))
    assert names(low) == ["cheap-text", "vision-mid", "long-big"]
    assert low.complexity.level == "low" and low.reason.startswith("tiers: low -> cheap-text (heuristic")
    hard = "Prove step by step that the integral of x^2 from 0 to 1 is 1/3, then compare two methods and analyze:\n" \
           "```python\ndef f(x):\n    return x ** 2\n```"
    high = decide(tbl, request(content=hard))
    assert high.complexity.level == "high" and names(high)[0] == "long-big"
    medium = decide(tbl, request(content="Please analyze this short plan and compare the options in detail."))
    assert medium.complexity.level == "medium" and names(medium)[0] == "vision-mid"  # no medium tier: default


def test_a_filtered_out_tier_falls_back_to_the_rest():
    tbl = group(strategy="tiers", deployments=["cheap-text", "vision-mid"], tiers={"low": ["cheap-text"]})
    decision = decide(tbl, request(content=IMAGE))
    assert names(decision) == ["vision-mid"]
    assert "tier unavailable" in decision.reason


# --- spillover -----------------------------------------------------------------------------------------

def test_saturated_self_hosted_deployments_spill_to_the_next():
    tbl = group(deployments=["local-vllm", "cheap-text"], spillover={"max_in_flight": 2, "waiting_above": 0,
                                                                     "scrape_interval_s": 1})
    local = tbl.deployments["local-vllm"]
    assert names(decide(tbl, request())) == ["local-vllm", "cheap-text"]
    local.in_flight = 2
    decision = decide(tbl, request())
    assert names(decision) == ["cheap-text", "local-vllm"]
    assert "spill: local-vllm saturated (2 in flight >= 2) -> cheap-text" in decision.reason
    local.in_flight = 0
    local.backend_load = BackendLoad(waiting=3, kv_usage=0.2, at=time.monotonic())
    assert names(decide(tbl, request()))[0] == "cheap-text"
    local.backend_load = BackendLoad(waiting=3, kv_usage=0.2, at=time.monotonic() - 10)  # stale: ignored
    assert names(decide(tbl, request()))[0] == "local-vllm"
    local.backend_load = BackendLoad(waiting=0, kv_usage=0.99, at=time.monotonic())
    assert "KV cache 99% > 95%" in decide(tbl, request()).reason


def test_paid_apis_never_spill():
    tbl = group(deployments=["cheap-text", "local-vllm"], spillover={"max_in_flight": 1})
    tbl.deployments["cheap-text"].in_flight = 50
    assert names(decide(tbl, request())) == ["cheap-text", "local-vllm"]

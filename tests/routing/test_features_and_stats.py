"""Request features, the heuristic complexity classifier, live statistics and the hedge budget."""

import pytest

from tests.routing.support import request
from tollway.core.request import parse_request
from tollway.routing.complexity import heuristic_complexity
from tollway.routing.features import RequestFeatures
from tollway.routing.hedging import HedgeBudget
from tollway.routing.live_stats import DeploymentStats, SampleWindow
from tollway.routing.settings import ComplexitySettings

SETTINGS = ComplexitySettings()


def features(**kwargs) -> RequestFeatures:
    return RequestFeatures(request(**kwargs))


def test_needs_are_read_from_images_tools_and_response_format():
    image = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert features(content=image).needs == {"vision"}
    assert features(tools=[{"type": "function", "function": {"name": "f"}}]).needs == {"tools"}
    assert features(response_format={"type": "json_schema", "json_schema": {}}).needs == {"json"}
    assert features(response_format={"type": "text"}).needs == frozenset()


def test_prompt_estimate_counts_characters_chinese_images_and_messages():
    assert features(content="x" * 400).prompt_tokens == 100 + 4
    assert features(content="中" * 100).prompt_tokens == 60 + 4
    image = [{"type": "text", "text": "x" * 40}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert features(content=image).prompt_tokens == 10 + 85 + 4


@pytest.mark.parametrize("content", ["x" * 400, "中文" * 300, [{"type": "image_url", "image_url": {"url": "u"}}] * 3])
def test_the_cheap_bound_is_never_below_the_estimate(content):
    found = features(content=content)
    assert found.prompt_tokens <= found.prompt_tokens_at_most()


def test_chinese_share_and_topics():
    assert features(content="请帮我总结一下这段文字").topics == {"zh"}
    assert features(content="Please summarise this text").topics == frozenset()
    code = features(content="Why does this fail?\n```python\ndef f(x):\n    return x\n```")
    assert code.topics == {"code"} and code.cjk_share == 0.0
    mixed = features(content="请看 this English sentence with a few words")
    assert 0 < mixed.cjk_share < 0.5 and "zh" not in mixed.topics


def test_completions_and_embeddings_have_features_too():
    creq = parse_request("completions", b'{"model": "g", "prompt": "Once upon a time", "max_tokens": 5}')
    found = RequestFeatures(creq)
    assert found.prompt_tokens == 4 and found.max_tokens == 5 and found.text == "Once upon a time"
    creq = parse_request("embeddings", b'{"model": "g", "input": ["abcd", "efgh"]}')
    assert RequestFeatures(creq).prompt_tokens == 2


@pytest.mark.parametrize("content, extra, level", [
    ("hi, how are you?", {}, "low"),
    ("What is the capital of France?", {}, "low"),
    ("Analyze the trade-offs of these two designs and compare them in detail.", {}, "medium"),
    ("Prove step by step that the integral of sin(x) over [0, pi] equals 2.", {}, "medium"),
    ("Refactor this:\n```python\ndef f(x):\n  return x\n```\nthen prove it is correct and analyze its complexity.", {}, "high"),
    ("hello", {"reasoning_effort": "high"}, "high"),
    ("请逐步分析并证明这个定理，然后比较两种方法。", {}, "high"),
])
def test_heuristic_levels(content, extra, level):
    found = heuristic_complexity(features(content=content, **extra), SETTINGS)
    assert found.level == level, found


def test_heuristic_signals_and_thresholds_are_configurable():
    found = heuristic_complexity(features(content="x " * 5000, tools=[{"type": "function"}] * 2), SETTINGS)
    assert "long prompt" in found.signals and "2 tools" in found.signals
    assert found.level == "medium"
    strict = ComplexitySettings(medium_at=0.05, high_at=0.3)
    assert heuristic_complexity(features(content="x " * 5000, tools=[{"type": "function"}] * 2), strict).level == "high"


def test_percentiles_are_nearest_rank_over_the_window():
    window = SampleWindow()
    assert window.percentile(95) is None
    for value in range(1, 101):
        window.add(value / 100)
    assert window.percentile(95) == 0.95 and window.percentile(99) == 0.99 and window.percentile(50) == 0.5
    for _ in range(300):  # old samples leave the window
        window.add(2.0)
    assert window.percentile(1) == 2.0


def test_ewma_follows_a_change_within_a_few_samples():
    stats = DeploymentStats()
    for _ in range(10):
        stats.observe_ttft(0.1)
    assert stats.ttft_ewma_s == pytest.approx(0.1)
    stats.observe_ttft(1.0)
    assert stats.ttft_ewma_s == pytest.approx(0.37)
    stats.observe_tpot(0.02)
    assert stats.expected_latency_s(11) == pytest.approx(0.37 + 10 * 0.02)


def test_a_plain_reply_is_split_into_first_token_and_decode_time():
    stats = DeploymentStats()
    stats.observe_tpot(0.01)
    stats.observe_reply(0.5, 21)
    assert stats.ttft_ewma_s == pytest.approx(0.3)
    assert stats.replies.percentile(50) == 0.5


def test_cache_share_is_learned():
    stats = DeploymentStats()
    for _ in range(30):
        stats.observe_cache(1000, 800)
    assert stats.cache_hit_ratio == pytest.approx(0.8, abs=0.01)


def test_the_hedge_budget_allows_at_most_its_share():
    budget = HedgeBudget(10)
    granted = 0
    for _ in range(1000):
        budget.earn()
        granted += budget.spend()
    assert granted == 100
    quiet = HedgeBudget(50)
    for _ in range(100):
        quiet.earn()  # credit saved up in a quiet stretch is capped
    assert [quiet.spend() for _ in range(4)] == [True, True, False, False]

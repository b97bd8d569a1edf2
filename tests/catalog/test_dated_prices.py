"""Requests priced at the moment they were made, against hand-computed Decimals.

Each case is a provider's usage as its API reports it (parsed by the dialect's usage parser), a timestamp
and the bill worked out by hand from the provider's published rates: DeepSeek's 2025 night discount and
its later price lists, OpenAI's o3 cut and cached rates, gpt-4o-mini and embeddings, DashScope's explicit
and implicit cache hits, Singapore and Beijing deployments, Anthropic's Opus 5.5 and Fable rows.
"""

from datetime import datetime, timezone
from decimal import Context, Decimal
from types import SimpleNamespace

import pytest

from tollway.catalog import Catalog
from tollway.catalog.cost import cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.catalog.regions import region_of
from tollway.core.usage import CacheSplitUsage, Usage
from tollway.providers.usage import usage_from_body, usage_from_chunk

UTC = timezone.utc
IN_USD = lambda cny: Context(prec=60).divide(Decimal(cny), Decimal("7.2"))  # noqa: E731  (as cost.py converts)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(cny_per_usd=Decimal("7.2"))


def deepseek_usage(hit: int, miss: int, completion: int) -> Usage:
    body = {"usage": {"prompt_tokens": hit + miss, "completion_tokens": completion,
                      "total_tokens": hit + miss + completion, "prompt_tokens_details": {"cached_tokens": hit},
                      "prompt_cache_hit_tokens": hit, "prompt_cache_miss_tokens": miss}}
    return usage_from_body("deepseek", body)


def bill(catalog: Catalog, provider: str, model: str, at: datetime, usage: Usage, **kwargs) -> Decimal:
    return cost_usd(usage, catalog.price(provider, model, at, usage.prompt_tokens, **kwargs))


# --- DeepSeek: deepseek-chat / deepseek-reasoner over 2025 ------------------------------------------------------

USAGE_DS = dict(hit=400_000, miss=600_000, completion=200_000)


def test_deepseek_chat_off_peak_in_june_2025_is_the_night_discount(catalog: Catalog) -> None:
    # 2025-06-10 20:00 UTC is inside UTC 16:30-00:30: $0.035 hit / $0.135 miss / $0.55 out
    at = datetime(2025, 6, 10, 20, 0, tzinfo=UTC)
    expected = (Decimal("0.4") * Decimal("0.035") + Decimal("0.6") * Decimal("0.135")
                + Decimal("0.2") * Decimal("0.55"))
    assert expected == Decimal("0.205")
    assert bill(catalog, "deepseek", "deepseek-chat", at, deepseek_usage(**USAGE_DS)) == expected
    assert catalog.price("deepseek", "deepseek-chat", at).note == "off-peak"


def test_deepseek_standard_hours_in_june_2025_price_chat_and_reasoner_apart(catalog: Catalog) -> None:
    at = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)  # inside UTC 00:30-16:30
    usage = deepseek_usage(**USAGE_DS)
    chat = Decimal("0.4") * Decimal("0.07") + Decimal("0.6") * Decimal("0.27") + Decimal("0.2") * Decimal("1.10")
    reasoner = Decimal("0.4") * Decimal("0.14") + Decimal("0.6") * Decimal("0.55") + Decimal("0.2") * Decimal("2.19")
    assert (chat, reasoner) == (Decimal("0.410"), Decimal("0.824"))
    assert bill(catalog, "deepseek", "deepseek-chat", at, usage) == chat
    assert bill(catalog, "deepseek", "deepseek-reasoner", at, usage) == reasoner
    # at night the reasoner is 75% off and costs what chat costs
    night = datetime(2025, 6, 11, 0, 29, tzinfo=UTC)
    assert bill(catalog, "deepseek", "deepseek-reasoner", night, usage) == Decimal("0.205")


def test_deepseek_night_window_edges_and_start(catalog: Catalog) -> None:
    price = lambda at: catalog.price("deepseek", "deepseek-chat", at)  # noqa: E731
    assert price(datetime(2025, 6, 10, 16, 29, tzinfo=UTC)).input == Decimal("0.27")
    assert price(datetime(2025, 6, 10, 16, 30, tzinfo=UTC)).input == Decimal("0.135")
    assert price(datetime(2025, 6, 11, 0, 30, tzinfo=UTC)).input == Decimal("0.27")
    # the discount began with the 00:30 Beijing window of 2025-02-27
    assert price(datetime(2025, 2, 26, 16, 29, tzinfo=UTC)).input == Decimal("0.27")
    assert price(datetime(2025, 2, 26, 16, 30, tzinfo=UTC)).input == Decimal("0.135")
    # before 2025-02-08 16:00 UTC deepseek-chat was still at its promotional price
    promo = price(datetime(2025, 1, 15, tzinfo=UTC))
    assert (promo.input, promo.cached_input, promo.output) == (Decimal("0.14"), Decimal("0.014"), Decimal("0.28"))
    assert catalog.price("deepseek", "deepseek-reasoner", datetime(2025, 1, 19, tzinfo=UTC)) is None  # no R1 yet


def test_deepseek_september_2025_unified_price_then_the_v32_cut(catalog: Catalog) -> None:
    usage = deepseek_usage(**USAGE_DS)
    last_night = datetime(2025, 9, 5, 15, 59, 59, tzinfo=UTC)  # still the old scheme (off-peak hours)
    assert bill(catalog, "deepseek", "deepseek-chat", last_night, usage) == Decimal("0.410")
    unified = Decimal("0.4") * Decimal("0.07") + Decimal("0.6") * Decimal("0.56") + Decimal("0.2") * Decimal("1.68")
    assert unified == Decimal("0.700")
    for model in ("deepseek-chat", "deepseek-reasoner"):
        assert bill(catalog, "deepseek", model, datetime(2025, 9, 5, 16, 0, tzinfo=UTC), usage) == unified
        assert bill(catalog, "deepseek", model, datetime(2025, 9, 5, 20, 0, tzinfo=UTC), usage) == unified  # no night
    october = Decimal("0.4") * Decimal("0.028") + Decimal("0.6") * Decimal("0.28") + Decimal("0.2") * Decimal("0.42")
    assert october == Decimal("0.2632")
    assert bill(catalog, "deepseek", "deepseek-chat", datetime(2025, 10, 15, 12, 0, tzinfo=UTC), usage) == october


def test_deepseek_chat_follows_v4_flash_from_the_v4_preview(catalog: Catalog) -> None:
    usage = deepseek_usage(**USAGE_DS)
    launch = Decimal("0.4") * Decimal("0.028") + Decimal("0.6") * Decimal("0.14") + Decimal("0.2") * Decimal("0.28")
    after_cut = Decimal("0.4") * Decimal("0.0028") + Decimal("0.6") * Decimal("0.14") + Decimal("0.2") * Decimal("0.28")
    assert bill(catalog, "deepseek", "deepseek-chat", datetime(2026, 4, 25, tzinfo=UTC), usage) == launch
    assert bill(catalog, "deepseek", "deepseek-chat", datetime(2026, 4, 26, 12, 15, tzinfo=UTC), usage) == after_cut
    assert bill(catalog, "deepseek", "deepseek-flash", datetime(2026, 4, 26, 12, 15, tzinfo=UTC), usage) == after_cut


# --- OpenAI ----------------------------------------------------------------------------------------------------

def openai_usage(prompt: int, cached: int, completion: int) -> Usage:
    return usage_from_body("openai", {"usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                                 "total_tokens": prompt + completion,
                                                 "prompt_tokens_details": {"cached_tokens": cached}}})


def test_o3_cached_input_is_a_quarter_of_input_before_and_after_the_cut(catalog: Catalog) -> None:
    usage = openai_usage(prompt=10_000, cached=8_000, completion=1_000)
    # after 2025-06-10: 2,000 x $2 + 8,000 x $0.50 + 1,000 x $8 = $0.016
    assert bill(catalog, "openai", "o3", datetime(2025, 7, 1, tzinfo=UTC), usage) == Decimal("0.016")
    # launch price until the cut: 2,000 x $10 + 8,000 x $2.50 + 1,000 x $40 = $0.08
    assert bill(catalog, "openai", "o3", datetime(2025, 6, 9, 23, 59, tzinfo=UTC), usage) == Decimal("0.08")
    assert catalog.price("openai", "o3", datetime(2025, 4, 15, tzinfo=UTC)) is None
    # o4-mini: 2,000 x $1.10 + 8,000 x $0.275 + 1,000 x $4.40 = $0.0088
    assert bill(catalog, "openai", "o4-mini", datetime(2025, 7, 1, tzinfo=UTC), usage) == Decimal("0.0088")


def test_gpt_4o_mini_and_gpt_4o_are_priced(catalog: Catalog) -> None:
    usage = openai_usage(prompt=1_000, cached=400, completion=500)
    at = datetime(2026, 11, 23, tzinfo=UTC)
    # 600 x $0.15 + 400 x $0.075 + 500 x $0.60 = $0.00042
    assert bill(catalog, "openai", "gpt-4o-mini", at, usage) == Decimal("0.00042")
    assert bill(catalog, "openai", "gpt-4o-mini-2024-07-18", at, usage) == Decimal("0.00042")  # dated snapshot id
    # 600 x $2.50 + 400 x $1.25 + 500 x $10 = $0.007; batch is half
    assert bill(catalog, "openai", "gpt-4o", at, usage) == Decimal("0.007")
    assert bill(catalog, "openai", "gpt-4o", at, usage, tier="batch") == Decimal("0.0035")
    # before 2024-10-02 `gpt-4o` was the 2024-05-13 snapshot at $5 / $15
    assert bill(catalog, "openai", "gpt-4o", datetime(2024, 9, 1, tzinfo=UTC), usage) == Decimal("0.0125")


def test_an_embedding_bills_its_input_tokens(catalog: Catalog) -> None:
    usage = usage_from_body("openai", {"object": "list", "data": [],
                                       "usage": {"prompt_tokens": 250_000, "total_tokens": 250_000}})
    at = datetime(2026, 11, 23, tzinfo=UTC)
    assert bill(catalog, "openai", "text-embedding-3-small", at, usage) == Decimal("0.005")   # x $0.02
    assert bill(catalog, "openai", "text-embedding-3-large", at, usage) == Decimal("0.0325")  # x $0.13
    assert bill(catalog, "openai", "text-embedding-ada-002", at, usage) == Decimal("0.025")   # x $0.10
    assert bill(catalog, "openai", "text-embedding-3-small", at, usage, tier="batch") == Decimal("0.0025")


# --- Qwen: explicit and implicit cache hits, regions ------------------------------------------------------------

def qwen_body(cached: int, **details) -> dict:
    return {"usage": {"prompt_tokens": 10_000, "completion_tokens": 1_000, "total_tokens": 11_000,
                      "prompt_tokens_details": {"cached_tokens": cached, **details}}}


def test_qwen_usage_tells_an_explicit_cache_hit_from_an_implicit_one() -> None:
    implicit = usage_from_body("qwen", qwen_body(8_000))
    explicit = usage_from_body("qwen", qwen_body(8_000, cache_type="ephemeral"))
    assert type(implicit) is Usage and implicit.cached_tokens == 8_000
    assert isinstance(explicit, CacheSplitUsage) and explicit.explicit_cached_tokens == explicit.cached_tokens == 8_000
    created = usage_from_body("qwen", qwen_body(0, cache_type="ephemeral", cache_creation_input_tokens=6_000,
                                                cache_creation={"ephemeral_5m_input_tokens": 6_000}))
    assert (created.cached_tokens, created.cache_write_tokens, created.uncached_prompt_tokens) == (0, 6_000, 4_000)
    only_split = usage_from_body("qwen", qwen_body(0, cache_type="ephemeral",
                                                   cache_creation={"ephemeral_5m_input_tokens": 6_000}))
    assert only_split.cache_write_tokens == 6_000
    # the same fields in another dialect mean nothing special
    assert type(usage_from_body("openai", qwen_body(8_000, cache_type="ephemeral"))) is Usage
    # a stream's final usage chunk (choices: []) is read the same way
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [], **qwen_body(8_000, cache_type="ephemeral")}
    assert usage_from_chunk("qwen", chunk).explicit_cached_tokens == 8_000


def test_qwen_explicit_hit_costs_half_an_implicit_hit(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    singapore = dict(region="ap-southeast-1")
    implicit = bill(catalog, "qwen", "qwen3.8-max", at, usage_from_body("qwen", qwen_body(8_000)), **singapore)
    explicit = bill(catalog, "qwen", "qwen3.8-max", at,
                    usage_from_body("qwen", qwen_body(8_000, cache_type="ephemeral")), **singapore)
    # 2,000 x $2 + 8,000 x (20% or 10% of $2) + 1,000 x $6
    assert implicit == Decimal("0.0132") and explicit == Decimal("0.0116")
    created = bill(catalog, "qwen", "qwen3.8-max", at,
                   usage_from_body("qwen", qwen_body(0, cache_type="ephemeral", cache_creation_input_tokens=8_000)),
                   **singapore)
    assert created == Decimal("0.03")  # 2,000 x $2 + 8,000 x 125% of $2 + 1,000 x $6


def test_qwen_explicit_hits_in_a_mainland_cny_tier(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    usage = usage_from_body("qwen", {"usage": {"prompt_tokens": 40_000, "completion_tokens": 1_000,
                                               "prompt_tokens_details": {"cached_tokens": 30_000,
                                                                         "cache_type": "ephemeral"}}})
    # 32K-128K tier (CNY): 10,000 x 4 + 30,000 x 0.4 (10%) + 1,000 x 16 = 68,000 CNY per M = 0.068 CNY
    assert bill(catalog, "qwen", "qwen3-max", at, usage, region="cn-beijing") == IN_USD("0.068")


def test_singapore_and_beijing_deployments_are_priced_from_their_own_lists(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    usage = usage_from_body("qwen", {"usage": {"prompt_tokens": 1_000, "completion_tokens": 1_000}})
    pricer = DeploymentPricer(catalog)

    def dep(name: str, base_url: str, region: str | None = None) -> SimpleNamespace:
        return SimpleNamespace(name=name, kind="qwen", upstream_model="qwen3-max", base_url=base_url, region=region,
                               config=SimpleNamespace(price=None))

    beijing = pricer.price(dep("bj", "https://dashscope.aliyuncs.com/compatible-mode/v1"), at, 1_000)
    singapore = pricer.price(dep("sg", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"), at, 1_000)
    # Beijing: 1,000 x 2.5 + 1,000 x 10 CNY per M at 7.2 CNY/USD; Singapore: 1,000 x $1.20 + 1,000 x $6
    assert cost_usd(usage, beijing) == IN_USD("0.0125")
    assert cost_usd(usage, singapore) == Decimal("0.0072")
    assert (beijing.region, singapore.region) == ("cn-beijing", "ap-southeast-1")
    # a proxy URL says nothing: the provider's region: decides; without either, no regional row applies
    via_proxy = pricer.price(dep("proxy", "https://llm-proxy.internal/v1", region="ap-southeast-1"), at, 1_000)
    assert via_proxy.region == "ap-southeast-1"
    assert pricer.price(dep("unknown", "https://llm-proxy.internal/v1"), at, 1_000) is None
    assert pricer.unpriced([dep("unknown", "https://llm-proxy.internal/v1")], at) == [
        "unknown (region not known; priced in ap-southeast-1, cn-beijing: set the provider's region:)"]


def test_region_of_reads_dashscope_hosts_and_workspace_domains() -> None:
    assert region_of(None, "https://dashscope.aliyuncs.com/compatible-mode/v1") == "cn-beijing"
    assert region_of(None, "https://dashscope-intl.aliyuncs.com/compatible-mode/v1") == "ap-southeast-1"
    assert region_of(None, "https://dashscope-us.aliyuncs.com/compatible-mode/v1") == "us-east-1"
    assert region_of(None, "https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1") == "cn-hongkong"
    assert region_of(None, "https://ws-123.ap-northeast-1.maas.aliyuncs.com/compatible-mode/v1") == "ap-northeast-1"
    assert region_of("AP-Southeast-1", "https://dashscope.aliyuncs.com/v1") == "ap-southeast-1"
    assert region_of(None, "http://127.0.0.1:8080/v1") is None and region_of(None, None) is None


def test_qwen_plus_and_qwen_max_are_priced_in_singapore(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    usage = usage_from_body("qwen", {"usage": {"prompt_tokens": 10_000, "completion_tokens": 1_000}})
    assert bill(catalog, "qwen", "qwen-plus", at, usage, region="ap-southeast-1") == Decimal("0.0052")  # $0.40/$1.20
    assert bill(catalog, "qwen", "qwen-max", at, usage, region="ap-southeast-1") == Decimal("0.0224")   # $1.60/$6.40
    assert catalog.price("qwen", "qwen-plus", at, region="cn-beijing") is None  # mainland price not researched


# --- Anthropic --------------------------------------------------------------------------------------------------

def anthropic_usage(read: int, write_5m: int, write_1h: int, uncached: int, output: int) -> Usage:
    return usage_from_body("anthropic", {"usage": {
        "input_tokens": uncached, "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write_5m + write_1h, "output_tokens": output,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h}}})


def test_anthropic_opus_55_and_fable_rows(catalog: Catalog) -> None:
    usage = anthropic_usage(read=100_000, write_5m=10_000, write_1h=10_000, uncached=5_000, output=2_000)
    at = datetime(2026, 11, 23, tzinfo=UTC)
    # Opus 5.5: 5,000 x $4 + 100,000 x $0.20 + 10,000 x $5 + 10,000 x $8 + 2,000 x $20 = $0.21
    assert bill(catalog, "anthropic", "claude-opus-5-5", at, usage) == Decimal("0.21")
    # Fable 5: $10 / read $1 / $12.50 / $20 / $50 = 0.05 + 0.1 + 0.125 + 0.2 + 0.1
    assert bill(catalog, "anthropic", "claude-fable-5", at, usage) == Decimal("0.575")
    # Fable 5.2 from 2026-11-09: $8 / read $0.20 / $10 / $16 / $40 = 0.04 + 0.02 + 0.1 + 0.16 + 0.08
    assert bill(catalog, "anthropic", "claude-fable-5-2", at, usage) == Decimal("0.4")
    assert catalog.price("anthropic", "claude-fable-5.2", datetime(2026, 11, 8, tzinfo=UTC)) is None

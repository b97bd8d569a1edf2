"""cost_usd: exact Decimal arithmetic, every rate in its place, unknown rates refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from tollway.catalog import Catalog, Price
from tollway.catalog.cost import UnknownPriceError, cost_usd, try_cost_usd
from tollway.core.usage import CacheSplitUsage, Usage
from tollway.providers.usage import usage_from_body

BEIJING = timezone(timedelta(hours=8))


def test_one_token_at_one_cent_per_million_is_exact() -> None:
    price = Price.usd(input=Decimal("0.01"), output=Decimal("0.01"))
    assert cost_usd(Usage(prompt_tokens=1), price) == Decimal("0.00000001")
    assert cost_usd(Usage(completion_tokens=1), price) == Decimal("0.00000001")


def test_each_token_kind_is_billed_at_its_rate() -> None:
    price = Price.usd(input=Decimal("3"), output=Decimal("15"), cached_input=Decimal("0.3"),
                      cache_write=Decimal("3.75"))
    usage = Usage(prompt_tokens=1000, cached_tokens=200, cache_write_tokens=100, completion_tokens=50,
                  reasoning_tokens=30)
    # 700 uncached x 3 + 200 x 0.3 + 100 x 3.75 + 50 x 15 (reasoning is inside completion, not added)
    assert cost_usd(usage, price) == Decimal("0.003285")


def test_one_hour_cache_writes_use_their_own_rate() -> None:
    price = Catalog.load().price("anthropic", "claude-sonnet-4.6", datetime(2026, 11, 22, tzinfo=timezone.utc))
    usage = CacheSplitUsage(prompt_tokens=110, cached_tokens=0, cache_write_tokens=100, completion_tokens=0,
                            cache_write_1h_tokens=40)
    # 10 x 3.00 + 60 x 3.75 (5 min) + 40 x 6.00 (1 h)
    assert cost_usd(usage, price) == Decimal("0.000495")
    plain = Usage(prompt_tokens=110, cache_write_tokens=100)
    assert cost_usd(plain, price) == Decimal("0.000405")  # all writes at the 5-minute rate


def test_huge_counts_stay_exact() -> None:
    price = Price.usd(input=Decimal("0.003625"), output=Decimal("3.96"))
    usage = Usage(prompt_tokens=987_654_321_987, completion_tokens=123_456_789_123)
    expected = (Decimal(987_654_321_987) * Decimal("0.003625") + Decimal(123_456_789_123) * Decimal("3.96")) / \
        Decimal(1_000_000)
    assert cost_usd(usage, price) == expected
    exact = (Fraction(987_654_321_987) * Fraction("0.003625") + Fraction(123_456_789_123) * Fraction("3.96")) / 10**6
    assert Fraction(cost_usd(usage, price)) == exact


def test_cny_prices_cost_the_original_amount_over_the_rate() -> None:
    catalog = Catalog.load(cny_per_usd=Decimal("7.2"))
    price = catalog.price("qwen", "qwen3-max", datetime(2026, 11, 22, tzinfo=timezone.utc), prompt_tokens=0,
                          region="cn-beijing")
    # 720,000 output tokens at 10 CNY/M = 7.2 CNY = 1 USD at 7.2.
    assert cost_usd(Usage(completion_tokens=720_000), price) == Decimal("1")
    # 1 token at 2.5 CNY/M: one division, 60 significant digits.
    one = cost_usd(Usage(prompt_tokens=1), price)
    assert abs(Fraction(one) - Fraction(25, 72 * 10**6)) < Fraction(1, 10**60)


def test_deepseek_request_costs_half_off_peak() -> None:
    catalog = Catalog.load()
    body = {"usage": {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000,
                      "prompt_tokens_details": {"cached_tokens": 400_000},
                      "prompt_cache_hit_tokens": 400_000, "prompt_cache_miss_tokens": 600_000}}
    usage = usage_from_body("deepseek", body)
    peak = catalog.price("deepseek", "deepseek-chat", datetime(2026, 11, 23, 10, 0, tzinfo=BEIJING))
    off = catalog.price("deepseek", "deepseek-chat", datetime(2026, 11, 23, 20, 0, tzinfo=BEIJING))
    # 600k miss x 0.30 + 400k hit x 0.006 + 1M out x 1.20 = 0.18 + 0.0024 + 1.20
    assert cost_usd(usage, peak) == Decimal("1.3824")
    assert cost_usd(usage, off) == Decimal("0.6912")


def test_self_hosted_costs_exactly_zero() -> None:
    price = Catalog.load().price("llamacpp", "smollm2-135m", datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert cost_usd(Usage(prompt_tokens=5000, cached_tokens=100, completion_tokens=300), price) == 0


def test_no_price_is_refused_not_free() -> None:
    with pytest.raises(UnknownPriceError, match="no catalog price"):
        cost_usd(Usage(prompt_tokens=1), None)
    assert try_cost_usd(Usage(prompt_tokens=1), None) is None


def test_an_unknown_rate_is_refused_only_when_tokens_need_it() -> None:
    price = Catalog.load().price("deepseek", "deepseek-r1", datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert cost_usd(Usage(completion_tokens=1000), price) == Decimal("0.0025")  # output is known
    with pytest.raises(UnknownPriceError, match=r"deepseek/deepseek-r1: the catalog has no input \(10 tokens\) "
                                                r"price .*source: seed material"):
        cost_usd(Usage(prompt_tokens=10, completion_tokens=1000), price)
    assert try_cost_usd(Usage(prompt_tokens=10), price) is None


def test_unconverted_cny_is_refused_with_the_reason() -> None:
    price = Catalog.load().price("qwen", "qwen-flash", datetime(2026, 11, 22, tzinfo=timezone.utc), region="cn-beijing")
    with pytest.raises(UnknownPriceError, match="set cny_per_usd"):
        cost_usd(Usage(prompt_tokens=10, completion_tokens=10), price)


def test_cached_tokens_with_an_unknown_cache_rate_are_refused() -> None:
    price = Catalog.load().price("glm", "glm-5", datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert cost_usd(Usage(prompt_tokens=100, completion_tokens=10), price) == Decimal("0.000132")
    with pytest.raises(UnknownPriceError, match=r"cached_input \(50 tokens\)"):
        cost_usd(Usage(prompt_tokens=100, cached_tokens=50, completion_tokens=10), price)

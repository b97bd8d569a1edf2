"""The request path's pricing shortcuts give byte-identical money: a price looked up once per (deployment,
minute, prompt class) is the price `DeploymentPricer.price` gives at the request's own microsecond, and the
cached billing rates cost every usage exactly as the plain Decimal formula (the code before the shortcuts,
restated here as the reference) does, down to the ledger's cost_usd text."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal
from types import SimpleNamespace

import pytest

from tollway.catalog import Catalog, Price
from tollway.catalog.cost import try_cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import PriceOverride
from tollway.core.money import decimal_text as usd_text
from tollway.core.usage import CacheSplitUsage, Usage

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REFERENCE = Context(prec=60)


def reference_cost(usage: Usage, price: Price | None) -> Decimal | None:
    """cost_usd as it was written before its rates were cached: one dict per request, same arithmetic."""
    if price is None:
        return None
    original = price.original
    if original is not None and original.get("cny_per_usd"):
        def rate(name: str) -> Decimal:
            value = original.get(name)
            return value if isinstance(value, Decimal) else Decimal("NaN")
        rates = {name: rate(name) for name in ("input", "cached_input", "cache_write", "cache_write_1h", "output")}
        divisor = original["cny_per_usd"]
    else:
        rates = {name: getattr(price, name) for name in ("input", "cached_input", "cache_write", "output")}
        rates["cache_write_1h"] = price.cache_write if price.cache_write_1h is None else price.cache_write_1h
        divisor = None
    write_1h = min(getattr(usage, "cache_write_1h_tokens", 0), usage.cache_write_tokens)
    terms = ((usage.uncached_prompt_tokens, rates["input"]), (usage.cached_tokens, rates["cached_input"]),
             (usage.cache_write_tokens - write_1h, rates["cache_write"]), (write_1h, rates["cache_write_1h"]),
             (usage.completion_tokens, rates["output"]))
    total = Decimal(0)
    for tokens, rate in terms:
        if tokens <= 0:
            continue
        if rate.is_nan():
            return None
        total = _REFERENCE.add(total, _REFERENCE.multiply(Decimal(tokens), rate))
    total = total.scaleb(-6, _REFERENCE)
    return total if divisor is None else _REFERENCE.divide(total, divisor)


def deployment(name: str, kind: str, model: str, price: PriceOverride | None = None,
               base_url: str = "http://127.0.0.1:1/v1") -> SimpleNamespace:
    """What the pricer reads of a RoutedDeployment."""
    return SimpleNamespace(name=name, kind=kind, upstream_model=model, config=SimpleNamespace(price=price),
                           base_url=base_url, region=None)


BEIJING_DASHSCOPE = "https://dashscope.aliyuncs.com/compatible-mode/v1"


def random_usage(rng: random.Random) -> Usage:
    prompt = rng.choice([0, 1, 7, 999, 32_000, 32_001, 128_001, 300_000, rng.randrange(1, 2_000_000)])
    cached = rng.randrange(0, prompt + 1) if rng.random() < 0.5 else 0
    written = rng.randrange(0, prompt - cached + 1) if rng.random() < 0.3 else 0
    completion = rng.choice([0, 1, rng.randrange(1, 100_000)])
    if written and rng.random() < 0.5:
        return CacheSplitUsage(prompt_tokens=prompt, cached_tokens=cached, cache_write_tokens=written,
                               completion_tokens=completion, cache_write_1h_tokens=rng.randrange(1, written + 1))
    return Usage(prompt_tokens=prompt, cached_tokens=cached, cache_write_tokens=written, completion_tokens=completion)


CNY_CATALOG = Catalog.load(cny_per_usd=Decimal("7.1234"))
DEPLOYMENTS = [
    deployment("flash", "deepseek", "deepseek-flash"),          # dated versions, peak/off-peak by Beijing time
    deployment("pro", "deepseek", "deepseek-v4-pro"),
    deployment("max", "qwen", "qwen3-max", base_url=BEIJING_DASHSCOPE),  # CNY, three prompt tiers (mainland)
    deployment("sonnet", "anthropic", "claude-sonnet-4.6"),     # 1-hour cache writes
    deployment("mini", "openai", "gpt-4o-mini"),
    deployment("own", "openai", "gpt-4o-mini",
               PriceOverride(input=Decimal("0.15"), output=Decimal("0.6"), cached_input=Decimal("0.075"))),
    deployment("local", "vllm", "my-model"),                    # self-hosted: free
    deployment("nowhere", "openai", "no-such-model"),           # unpriced
]


def test_cost_text_is_byte_identical_to_the_reference_over_many_usages_and_prices() -> None:
    rng = random.Random(20261122)
    pricer = DeploymentPricer(CNY_CATALOG)
    start = int(datetime(2026, 8, 10, tzinfo=timezone.utc).timestamp() * 1_000_000)
    checked = {"cny": 0, "tiered": 0, "priced": 0, "unpriced": 0}
    for _ in range(6000):
        dep = rng.choice(DEPLOYMENTS)
        usage = random_usage(rng)
        micros = start + rng.randrange(0, 60 * 86_400 * 1_000_000)
        expected_price = pricer.price(dep, EPOCH + timedelta(microseconds=micros), usage.prompt_tokens)
        price = pricer.price_at(dep, micros, usage.prompt_tokens)
        assert price is expected_price, (dep.name, micros, usage)
        expected, got = reference_cost(usage, expected_price), try_cost_usd(usage, price)
        assert (got is None) == (expected is None)
        if got is None:
            checked["unpriced"] += 1
            continue
        assert usd_text(got + Decimal(0)) == usd_text(expected + Decimal(0))  # as the row's total makes it
        checked["priced"] += 1
        checked["cny"] += price.currency == "CNY"
        checked["tiered"] += usage.prompt_tokens > 32_000 and dep.name == "max"
    assert min(checked.values()) > 50, checked  # every kind of price was exercised


def test_minute_cache_follows_peak_windows_and_a_version_starting_mid_minute() -> None:
    mid_minute = {"provider": "deepseek", "model": "deepseek-flash", "prices": [
        {"effective_from": None, "input": "1", "output": "2", "cached_input": "0.5", "source": "s", "verified": True},
        {"effective_from": "2026-11-23T01:00:30Z", "input": "3", "output": "4", "cached_input": "1", "source": "s",
         "verified": True, "prompt_tiers": [{"above": 1000, "input": "5", "output": "6", "cached_input": "2"}]}]}
    catalog = Catalog.load(overrides=[mid_minute])
    pricer = DeploymentPricer(catalog)
    flash = deployment("flash", "deepseek", "deepseek-flash")
    pro = deployment("pro", "deepseek", "deepseek-v4-pro")
    # Monday 2026-11-23 09:00 Beijing (01:00 UTC) peak starts; the new version starts at 01:00:30 UTC.
    base = int(datetime(2026, 11, 23, 0, 59, tzinfo=timezone.utc).timestamp() * 1_000_000)
    seconds = [0, 29, 59.999999, 60, 60.5, 89.999999, 90, 90.000001, 119, 120, 180]
    for second in seconds:  # prompt lengths inner: one minute sees every prompt class
        for prompt in (0, 999, 1000, 1001, 50_000):
            for dep in (flash, pro):
                micros = base + round(second * 1_000_000)
                assert pricer.price_at(dep, micros, prompt) is pricer.price(
                    dep, EPOCH + timedelta(microseconds=micros), prompt), (dep.name, second, prompt)
    at = lambda second: base + second * 1_000_000  # noqa: E731
    assert pricer.price_at(flash, at(61), 5000).input == Decimal("1")   # before 01:00:30
    assert pricer.price_at(flash, at(91), 5000).input == Decimal("5")   # the new version's long-prompt tier
    assert pricer.price_at(flash, at(91), 10).input == Decimal("3")
    assert pricer.price_at(pro, at(59), 0).input != pricer.price_at(pro, at(60), 0).input  # peak at 09:00 sharp


@pytest.mark.parametrize("cny_per_usd", ["7.2", "7.1234", "6.9"])
def test_cny_tiered_prices_cost_as_before(cny_per_usd: str) -> None:
    pricer = DeploymentPricer(Catalog.load(cny_per_usd=Decimal(cny_per_usd)))
    dep = deployment("max", "qwen", "qwen3-max", base_url=BEIJING_DASHSCOPE)
    micros = int(datetime(2026, 11, 22, 12, tzinfo=timezone.utc).timestamp() * 1_000_000)
    for prompt in (1, 32_000, 32_001, 128_000, 128_001, 250_000):
        usage = Usage(prompt_tokens=prompt, cached_tokens=prompt // 3, completion_tokens=777)
        price = pricer.price_at(dep, micros, prompt)
        assert price is pricer.price(dep, EPOCH + timedelta(microseconds=micros), prompt)
        assert price.currency == "CNY"
        assert usd_text(try_cost_usd(usage, price)) == usd_text(reference_cost(usage, price))

"""Price selection from the built-in catalog: dates, peak/off-peak, prompt-length tiers, service tiers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tollway.catalog import Catalog

BEIJING = timezone(timedelta(hours=8))
UTC = timezone.utc


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="module")
def catalog_cny8() -> Catalog:
    return Catalog.load(cny_per_usd=Decimal("8"))


def flash(catalog: Catalog, at: datetime):
    price = catalog.price("deepseek", "deepseek-flash", at)
    assert price is not None
    return price


# --- DeepSeek time of day (current scheme: peak 0.30 / 0.006 / 1.20, off-peak 0.15 / 0.003 / 0.60) -------------

@pytest.mark.parametrize(("local", "peak"), [
    ("2026-11-23T08:59:59", False),  # Monday, just before the morning window
    ("2026-11-23T09:00:00", True),
    ("2026-11-23T11:59:59", True),
    ("2026-11-23T12:00:00", False),  # lunch
    ("2026-11-23T13:59:00", False),
    ("2026-11-23T14:00:00", True),
    ("2026-11-23T17:59:59", True),
    ("2026-11-23T18:00:00", False),
    ("2026-11-27T17:30:00", True),   # Friday afternoon
    ("2026-11-21T10:00:00", False),  # Saturday
    ("2026-11-22T15:00:00", False),  # Sunday
    ("2026-10-01T10:00:00", False),  # Thursday, National Day (built-in cn-mainland calendar)
    ("2026-09-25T10:00:00", False),  # Friday, Mid-Autumn holiday
    ("2026-09-24T10:00:00", True),   # the Thursday before is a working day
])
def test_deepseek_peak_windows_in_beijing_time(catalog: Catalog, local: str, peak: bool) -> None:
    at = datetime.fromisoformat(local).replace(tzinfo=BEIJING)
    price = flash(catalog, at)
    if peak:
        assert (price.input, price.cached_input, price.output) == (Decimal("0.30"), Decimal("0.006"), Decimal("1.20"))
        assert price.note == "peak"
    else:
        assert (price.input, price.cached_input, price.output) == (Decimal("0.15"), Decimal("0.003"), Decimal("0.60"))
        assert price.note == "off-peak"


def test_deepseek_peak_is_decided_in_beijing_whatever_the_callers_zone(catalog: Catalog) -> None:
    # 01:00 UTC Monday = 09:00 Beijing (peak); 00:59 UTC = 08:59 Beijing (off-peak).
    assert flash(catalog, datetime(2026, 11, 23, 1, 0, tzinfo=UTC)).note == "peak"
    assert flash(catalog, datetime(2026, 11, 23, 0, 59, tzinfo=UTC)).note == "off-peak"
    # Sunday 23:30 UTC is already Monday 07:30 in Beijing: still off-peak; Monday 17:30 UTC is 01:30 Tuesday.
    assert flash(catalog, datetime(2026, 11, 22, 23, 30, tzinfo=UTC)).note == "off-peak"
    assert flash(catalog, datetime(2026, 11, 23, 17, 30, tzinfo=UTC)).note == "off-peak"
    # Friday 10:00 UTC = 18:00 Beijing: the evening is off-peak.
    assert flash(catalog, datetime(2026, 11, 27, 10, 0, tzinfo=UTC)).note == "off-peak"
    # A naive datetime is UTC: 02:00 Monday = 10:00 Beijing.
    assert flash(catalog, datetime(2026, 11, 23, 2, 0)).note == "peak"


def test_a_configured_holiday_makes_a_weekday_off_peak() -> None:
    wednesday_10am = datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)
    plain = Catalog.load()
    with_holiday = Catalog.load(overrides=[{"calendar": "cn-mainland", "holidays": ["2026-11-25"]}])
    assert flash(plain, wednesday_10am).note == "peak"
    assert flash(with_holiday, wednesday_10am).note == "off-peak"
    assert flash(with_holiday, wednesday_10am).input == Decimal("0.15")
    assert flash(with_holiday, wednesday_10am + timedelta(days=1)).note == "peak"  # only that date


def test_deepseek_scheme_changes_by_date(catalog: Catalog) -> None:
    # Before 2026-08-16 16:00 UTC: V4 price after the 2026-04-26 cache-hit cut, no time-of-day rule.
    before = flash(catalog, datetime(2026, 8, 16, 15, 59, 59, tzinfo=UTC))
    assert (before.input, before.cached_input, before.output) == (Decimal("0.14"), Decimal("0.0028"), Decimal("0.28"))
    assert before.note == "" and before.effective_from.isoformat() == "2026-04-26"
    # From 16:00 UTC that Sunday: first peak scheme, off-peak (Sunday) = half of 0.44 / 1.32.
    first = flash(catalog, datetime(2026, 8, 16, 16, 0, tzinfo=UTC))
    assert (first.input, first.output, first.note) == (Decimal("0.220"), Decimal("0.660"), "off-peak")
    assert first.verified is False
    monday_peak = flash(catalog, datetime(2026, 8, 17, 10, 0, tzinfo=BEIJING))
    assert (monday_peak.input, monday_peak.output) == (Decimal("0.44"), Decimal("1.32"))
    # Current scheme from 2026-09-10 (00:00 UTC).
    assert flash(catalog, datetime(2026, 9, 9, 10, 0, tzinfo=BEIJING)).input == Decimal("0.44")
    current = flash(catalog, datetime(2026, 9, 10, 10, 0, tzinfo=BEIJING))
    assert current.input == Decimal("0.30") and current.verified is True
    assert current.effective_from.isoformat() == "2026-09-10"


def test_deepseek_has_no_batch_tier_and_no_cache_write_charge(catalog: Catalog) -> None:
    at = datetime(2026, 11, 23, 10, 0, tzinfo=BEIJING)
    assert catalog.price("deepseek", "deepseek-flash", at, tier="batch") is None
    price = flash(catalog, at)
    assert price.cache_write == price.input  # a cache miss is billed at the input rate


def test_legacy_deepseek_names_resolve_to_the_current_model(catalog: Catalog) -> None:
    for alias in ("deepseek-v4-flash", "deepseek-v4-flash-vision-exp"):
        entry = catalog.entry("deepseek", alias)
        assert entry is not None and entry.model == "deepseek-flash"
    # deepseek-chat / deepseek-reasoner had their own prices before they became V4-Flash's names
    assert catalog.entry("deepseek", "deepseek-chat").model == "deepseek-chat"
    assert catalog.entry("deepseek", "deepseek-reasoner").model == "deepseek-reasoner"


def test_dated_versions_switch_at_their_start(catalog: Catalog) -> None:
    before = catalog.price("openai", "gpt-5.6-sol", datetime(2026, 11, 21, 23, 59, tzinfo=UTC))
    after = catalog.price("openai", "gpt-5.6-sol", datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    assert (before.input, before.output) == (Decimal("4.00"), Decimal("20.00"))
    assert (after.input, after.output) == (Decimal("5.00"), Decimal("30.00"))
    assert after.cached_input == Decimal("0.500")  # 0.1x input on the GPT-5 family


def test_no_price_before_the_first_dated_version(catalog: Catalog) -> None:
    assert catalog.price("glm", "glm-5.3", datetime(2026, 8, 18, 12, 0, tzinfo=UTC)) is None
    assert catalog.price("glm", "glm-5.3", datetime(2026, 8, 19, 0, 0, tzinfo=UTC)).input == Decimal("1.40")


# --- prompt-length tiers and service tiers ----------------------------------------------------------------------

@pytest.mark.parametrize(("prompt", "input_usd", "output_usd", "note"), [
    (0, "0.3125", "1.25", ""),
    (32000, "0.3125", "1.25", ""),
    (32001, "0.5", "2", "prompt > 32000 tokens"),
    (128000, "0.5", "2", "prompt > 32000 tokens"),
    (128001, "0.875", "3.5", "prompt > 128000 tokens"),
])
def test_qwen_input_length_tiers(catalog_cny8: Catalog, prompt: int, input_usd: str, output_usd: str,
                                 note: str) -> None:
    price = catalog_cny8.price("qwen", "qwen3-max", datetime(2026, 11, 22, tzinfo=UTC), prompt_tokens=prompt,
                               region="cn-beijing")
    assert price.input == Decimal(input_usd) and price.output == Decimal(output_usd)
    assert price.note.startswith(note) and price.note.endswith("CNY at 8 per USD")


def test_qwen_batch_is_half_of_the_tier_price(catalog_cny8: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    batch = catalog_cny8.price("qwen", "qwen3-max", at, prompt_tokens=1000, tier="batch", region="cn-beijing")
    assert (batch.input, batch.output) == (Decimal("0.15625"), Decimal("0.625"))  # 1.25 / 5 CNY at 8
    long_batch = catalog_cny8.price("qwen", "qwen3-max", at, prompt_tokens=40000, tier="batch", region="cn-beijing")
    assert long_batch.input == Decimal("0.25")


def test_qwen_cache_ratios_from_the_context_cache_page(catalog: Catalog) -> None:
    price = catalog.price("qwen", "qwen3.8-max", datetime(2026, 11, 22, tzinfo=UTC), region="ap-southeast-1")
    assert price.cached_input == Decimal("0.400")  # implicit hit: 20% of 2.00
    assert price.explicit_cached_input == Decimal("0.200")  # explicit hit: 10%
    assert price.cache_write == Decimal("2.5000")  # explicit creation: 125%


def test_openai_long_context_reprices_the_whole_request(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    short = catalog.price("openai", "gpt-5.5", at, prompt_tokens=272000)
    long = catalog.price("openai", "gpt-5.5", at, prompt_tokens=272001)
    assert (short.input, short.cached_input, short.output) == (Decimal("5.00"), Decimal("0.50"), Decimal("30.00"))
    assert (long.input, long.cached_input, long.output) == (Decimal("10.00"), Decimal("1.00"), Decimal("45.00"))
    long_batch = catalog.price("openai", "gpt-5.5", at, prompt_tokens=300000, tier="batch")
    assert (long_batch.input, long_batch.output) == (Decimal("5.000"), Decimal("22.500"))
    flex = catalog.price("openai", "gpt-5.5", at, prompt_tokens=1000, tier="flex")
    assert flex.output == Decimal("15.000") and flex.tier == "flex"


def test_openai_priority_has_its_own_verified_table_without_long_context(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    priority = catalog.price("openai", "gpt-5.5", at, prompt_tokens=1000, tier="priority")
    assert (priority.input, priority.cached_input, priority.output) == (Decimal("12.50"), Decimal("1.25"),
                                                                       Decimal("75.00"))
    assert priority.verified is True and "api-priority-processing" in priority.source
    assert catalog.price("openai", "gpt-5.5", at, prompt_tokens=272001, tier="priority") is None


def test_standard_price_unknown_but_priority_known(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    standard = catalog.price("openai", "gpt-5", at)
    assert set(standard.unknown) >= {"input", "cached_input", "output"}
    assert catalog.price("openai", "gpt-5", at, tier="priority").output == Decimal("20.00")


def test_anthropic_four_input_rates_and_batch(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    price = catalog.price("anthropic", "claude-sonnet-4-5", at)
    assert (price.input, price.cache_write, price.cache_write_1h, price.cached_input, price.output) == (
        Decimal("3.00"), Decimal("3.75"), Decimal("6.00"), Decimal("0.30"), Decimal("15.00"))
    batch = catalog.price("anthropic", "claude-sonnet-4-5", at, tier="batch")
    assert (batch.input, batch.cache_write_1h, batch.output) == (Decimal("1.500"), Decimal("3.000"), Decimal("7.500"))
    fable = catalog.price("anthropic", "claude-fable-5.1", at)
    assert fable.cached_input / fable.input == Decimal("0.025")


def test_anthropic_dated_snapshot_ids_resolve(catalog: Catalog) -> None:
    entry = catalog.entry("anthropic", "claude-sonnet-4-5-20250929")
    assert entry is not None and entry.model == "claude-sonnet-4.6"


def test_haiku_5_5_long_prompt_reprices_every_rate(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    short = catalog.price("anthropic", "claude-haiku-5.5", at, prompt_tokens=100000)
    long = catalog.price("anthropic", "claude-haiku-5.5", at, prompt_tokens=100001)
    assert (short.input, short.cache_write_1h, short.output) == (Decimal("0.10"), Decimal("0.20"), Decimal("0.50"))
    assert (long.input, long.cache_write, long.cache_write_1h, long.cached_input, long.output) == (
        Decimal("0.50"), Decimal("0.625"), Decimal("1.00"), Decimal("0.05"), Decimal("2.50"))
    assert catalog.price("anthropic", "claude-haiku-5.5", datetime(2026, 10, 6, tzinfo=UTC)) is None


def test_sonnet_5_5_cache_read_cut(catalog: Catalog) -> None:
    before = catalog.price("anthropic", "claude-sonnet-5.5", datetime(2026, 10, 6, tzinfo=UTC))
    after = catalog.price("anthropic", "claude-sonnet-5.5", datetime(2026, 10, 7, tzinfo=UTC))
    assert (before.cached_input, after.cached_input) == (Decimal("0.20"), Decimal("0.10"))
    assert after.cache_write == Decimal("2.5000") and after.cache_write_1h == Decimal("4.00")


@pytest.mark.parametrize("provider", ["vllm", "sglang", "lmdeploy", "llamacpp", "ollama"])
def test_self_hosted_tokens_are_explicitly_free(catalog: Catalog, provider: str) -> None:
    price = catalog.price(provider, "any-model-name", datetime(2026, 11, 22, tzinfo=UTC))
    assert price is not None
    assert (price.input, price.cached_input, price.cache_write, price.output) == (0, 0, 0, 0)
    assert price.unknown == ()


def test_unknown_models_providers_and_tiers(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    assert catalog.price("deepseek", "no-such-model", at) is None
    assert catalog.price("nobody", "deepseek-flash", at) is None
    assert catalog.entry("openai", "no-such-model") is None
    with pytest.raises(ValueError, match="tier 'express'"):
        catalog.price("openai", "gpt-5.5", at, tier="express")


def test_seed_entries_keep_unknown_rates_unknown(catalog: Catalog) -> None:
    price = catalog.price("deepseek", "deepseek-r1", datetime(2026, 11, 22, tzinfo=UTC))
    assert price.output == Decimal("2.50") and price.source == "seed material" and price.verified is False
    assert set(price.unknown) == {"input", "cached_input", "cache_write", "cache_write_1h"}


def test_facts_beat_seed_material(catalog: Catalog) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    assert catalog.price("glm", "glm-5", at).output == Decimal("3.20")  # seed said 1.92
    kimi = catalog.price("kimi", "kimi-k2.5", at)
    assert (kimi.input, kimi.cached_input, kimi.output, kimi.verified) == (
        Decimal("0.60"), Decimal("0.10"), Decimal("3.00"), True)


def test_every_builtin_entry_has_sources_and_routing_facts(catalog: Catalog) -> None:
    entries = catalog.entries()
    providers = {entry.provider for entry in entries}
    assert providers == {"deepseek", "qwen", "kimi", "glm", "openai", "anthropic", "gemini",
                         "vllm", "sglang", "lmdeploy", "llamacpp", "ollama"}
    for entry in entries:
        assert entry.prices and all(version.source for version in entry.prices)
    flash_entry = catalog.entry("deepseek", "deepseek-flash")
    assert flash_entry.context_window == 1000000 and "vision" in flash_entry.capabilities
    assert "zh" in flash_entry.strong_in


def test_history_lists_versions_oldest_first(catalog: Catalog) -> None:
    history = catalog.history("deepseek", "deepseek-flash")
    assert [price.input for _, price in history] == [Decimal("0.14"), Decimal("0.14"), Decimal("0.44"), Decimal("0.30")]
    assert catalog.history("deepseek", "nope") == []

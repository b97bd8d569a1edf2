"""User catalog data: override precedence, CNY conversion, and errors that name the key path."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from tollway.catalog import Catalog, CatalogError

AT = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def entry(**changes) -> dict:
    version = {"effective_from": "2026-01-01", "input": "1.00", "cached_input": "0.10", "output": "2.00",
               "source": "my contract", "verified": True}
    version.update(changes.pop("version", {}))
    return {"provider": "deepseek", "model": "deepseek-flash", "prices": [version], **changes}


# --- precedence -------------------------------------------------------------------------------------------------

def test_override_replaces_the_builtin_entry_whole() -> None:
    catalog = Catalog.load(overrides=[entry()])
    price = catalog.price("deepseek", "deepseek-flash", AT)
    assert (price.input, price.output, price.source, price.note) == (Decimal("1.00"), Decimal("2.00"), "my contract", "")
    # The built-in entry's aliases went with it: a replacement says everything it means.
    assert catalog.entry("deepseek", "deepseek-v4-flash") is None
    assert Catalog.load().entry("deepseek", "deepseek-v4-flash").model == "deepseek-flash"


def test_override_adds_new_models_and_providers() -> None:
    catalog = Catalog.load(overrides=[entry(provider="mycloud", model="big-model", aliases=["big"])])
    assert catalog.price("mycloud", "big", AT).input == Decimal("1.00")
    assert catalog.price("deepseek", "deepseek-flash", AT).source != "my contract"  # built-in untouched


def test_files_override_builtin_and_config_overrides_files(tmp_path: Path) -> None:
    user_file = tmp_path / "prices.yaml"
    user_file.write_text(
        "provider: deepseek\nmodels:\n"
        "  - model: deepseek-flash\n"
        "    prices:\n"
        "      - {effective_from: 2026-01-01, input: '5', cached_input: '0.5', output: '6', source: file, verified: true}\n"
        "  - model: file-only\n"
        "    prices:\n"
        "      - {effective_from: null, input: '7', cached_input: '0.7', output: '8', source: file, verified: false}\n")
    from_file = Catalog.load(files=[user_file])
    assert from_file.price("deepseek", "deepseek-flash", AT).input == Decimal("5")
    both = Catalog.load(files=[user_file], overrides=[entry()])
    assert both.price("deepseek", "deepseek-flash", AT).input == Decimal("1.00")
    assert both.price("deepseek", "file-only", AT).input == Decimal("7")


def test_an_override_alias_takes_the_name_from_a_builtin_alias() -> None:
    catalog = Catalog.load(overrides=[entry(model="my-flash", aliases=["deepseek-v4-flash"])])
    assert catalog.entry("deepseek", "deepseek-v4-flash").model == "my-flash"
    assert catalog.entry("deepseek", "deepseek-v4-flash-vision-exp").model == "deepseek-flash"


def test_an_alias_never_hides_a_real_model_name() -> None:
    catalog = Catalog.load(overrides=[entry(model="my-model", aliases=["deepseek-v4-pro"])])
    assert catalog.entry("deepseek", "deepseek-v4-pro").model == "deepseek-v4-pro"


def test_without_builtin_only_user_entries_exist() -> None:
    catalog = Catalog.load(overrides=[entry()], include_builtin=False)
    assert [e.model for e in catalog.entries()] == ["deepseek-flash"]
    assert catalog.price("vllm", "anything", AT) is None


def test_from_config_section_accepts_the_config_mapping_the_list_or_none() -> None:
    from_mapping = Catalog.from_config_section({"catalog": [entry()], "cny_per_usd": Decimal("7.1"), "server": {}})
    assert from_mapping.price("deepseek", "deepseek-flash", AT).input == Decimal("1.00")
    assert from_mapping.cny_per_usd == Decimal("7.1")
    assert Catalog.from_config_section([entry()]).price("deepseek", "deepseek-flash", AT).input == Decimal("1.00")
    assert Catalog.from_config_section(None).entry("deepseek", "deepseek-chat") is not None
    assert Catalog.from_config_section({}).cny_per_usd is None


def test_from_config_section_reads_a_config_object_too() -> None:
    config = SimpleNamespace(catalog=[entry()], cny_per_usd=Decimal("7"), providers={})
    catalog = Catalog.from_config_section(config)
    assert catalog.cny_per_usd == Decimal("7")
    assert catalog.price("deepseek", "deepseek-flash", AT).input == Decimal("1.00")
    with pytest.raises(CatalogError, match="expected a mapping"):
        Catalog.from_config_section(42)


# --- CNY --------------------------------------------------------------------------------------------------------

def cny_entry() -> dict:
    return entry(provider="mycn", model="m", version={"currency": "CNY", "input": "2", "cached_input": "0.4",
                                                      "output": "8"})


def test_cny_is_converted_exactly_when_the_rate_divides() -> None:
    price = Catalog.load(overrides=[cny_entry()], cny_per_usd=Decimal("8")).price("mycn", "m", AT)
    assert (price.input, price.cached_input, price.output) == (Decimal("0.25"), Decimal("0.05"), Decimal("1"))
    assert price.currency == "CNY"
    assert price.original["currency"] == "CNY"
    assert (price.original["input"], price.original["output"]) == (Decimal("2"), Decimal("8"))
    assert price.original["cny_per_usd"] == Decimal("8")


def test_cny_conversion_keeps_forty_significant_digits_and_the_original_amounts() -> None:
    price = Catalog.load(overrides=[cny_entry()], cny_per_usd="7.2").price("mycn", "m", AT)
    assert price.input == Decimal("0.2777777777777777777777777777777777777778")
    assert price.original["input"] == Decimal("2")
    assert price.note == "CNY at 7.2 per USD"


def test_cny_without_a_rate_is_unknown_not_zero() -> None:
    price = Catalog.load(overrides=[cny_entry()]).price("mycn", "m", AT)
    assert set(price.unknown) == {"input", "cached_input", "cache_write", "cache_write_1h", "output"}
    assert "cny_per_usd" in price.note
    assert price.original["input"] == Decimal("2")


@pytest.mark.parametrize("bad", [0, "-1", "abc", "NaN", True])
def test_bad_cny_rate(bad: object) -> None:
    with pytest.raises(CatalogError, match="cny_per_usd"):
        Catalog.load(cny_per_usd=bad)


# --- errors name the key path -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("item", "expected"), [
    (entry(version={"input": "-0.5"}), r"catalog\[0\]\.prices\[0\]\.input: must not be negative \(got -0.5\)"),
    (entry(version={"inptu": "1"}), r"catalog\[0\]\.prices\[0\]\.inptu: unknown field 'inptu'"),
    (entry(version={"effective_from": "2026-13-01"}),
     r"catalog\[0\]\.prices\[0\]\.effective_from: '2026-13-01' is not a date"),
    (entry(version={"currency": "EUR"}), r"catalog\[0\]\.prices\[0\]\.currency: .*'USD' or 'CNY' \(got 'EUR'\)"),
    (entry(version={"output": "cheap"}), r"catalog\[0\]\.prices\[0\]\.output: 'cheap' is not a number"),
    (entry(version={"output": None}), r"catalog\[0\]\.prices\[0\]\.output: null is not a price"),
    (entry(colour="blue"), r"catalog\[0\]\.colour: unknown field"),
    (entry(capabilities=["telepathy"]), r"catalog\[0\]\.capabilities\[0\]"),
    (entry(prices=[]), r"catalog\[0\]\.prices: "),
    (entry(version={"service_tiers": {"express": {"factor": "0.5"}}}),
     r"catalog\[0\]\.prices\[0\]\.service_tiers\.express: Input should be 'batch', 'priority' or 'flex' \(got 'express'\)"),
    (entry(version={"verified": "maybe"}), r"catalog\[0\]\.prices\[0\]\.verified: .*boolean.*\(got 'maybe'\)"),
    (entry(version={"service_tiers": {"batch": {}}}), r"catalog\[0\]\.prices\[0\]\.service_tiers\.batch: give a factor"),
    (entry(version={"off_peak": {"factor": "0.5"}}), r"catalog\[0\]\.prices\[0\]: peak_hours and off_peak go together"),
    (entry(version={"peak_hours": {"timezone": "Mars/Olympus", "days": ["mon"], "windows": ["09:00-12:00"]},
                    "off_peak": {"factor": "0.5"}}),
     r"catalog\[0\]\.prices\[0\]\.peak_hours\.timezone: 'Mars/Olympus' is not an IANA time zone"),
    (entry(version={"peak_hours": {"timezone": "UTC", "days": ["mon"], "windows": ["12:00-09:00"]},
                    "off_peak": {"factor": "0.5"}}),
     r"catalog\[0\]\.prices\[0\]\.peak_hours\.windows: .*'12:00-09:00'"),
    (entry(version={"prompt_tiers": [{"above": 1000, "input": "1"}]}),
     r"catalog\[0\]\.prices\[0\]\.prompt_tiers\[0\]: a prompt tier needs output"),
])
def test_bad_override_entries_name_the_key_path(item: dict, expected: str) -> None:
    with pytest.raises(CatalogError, match=r"^config catalog: .*" + expected):
        Catalog.load(overrides=[item])


def test_a_missing_rate_must_be_written_unknown() -> None:
    item = entry()
    del item["prices"][0]["output"]
    with pytest.raises(CatalogError, match=r"catalog\[0\]\.prices\[0\]: output required \(write unknown"):
        Catalog.load(overrides=[item])


def test_the_second_bad_item_is_named() -> None:
    with pytest.raises(CatalogError, match=r"catalog\[1\]\.prices\[0\]\.input: must not be negative"):
        Catalog.load(overrides=[entry(), entry(model="other", version={"input": -1})])


def test_duplicate_names_in_one_source_are_rejected() -> None:
    with pytest.raises(CatalogError, match="deepseek/deepseek-flash is defined twice"):
        Catalog.load(overrides=[entry(), entry()])


def test_unknown_holiday_calendar_is_named() -> None:
    item = entry(version={"peak_hours": {"timezone": "Asia/Shanghai", "days": ["mon"], "windows": ["09:00-12:00"],
                                         "calendar": "atlantis"}, "off_peak": {"factor": "0.5"}})
    with pytest.raises(CatalogError, match=r"deepseek/deepseek-flash: prices\[0\]\.peak_hours\.calendar: .*'atlantis'"):
        Catalog.load(overrides=[item])


def test_only_one_version_may_have_an_unknown_start() -> None:
    item = entry()
    item["prices"].append(dict(item["prices"][0], effective_from=None))
    item["prices"][0]["effective_from"] = None
    with pytest.raises(CatalogError, match=r"catalog\[0\]: only one price version .*prices\[0\] and prices\[1\] do"):
        Catalog.load(overrides=[item])


def test_overrides_must_be_a_list_of_mappings() -> None:
    with pytest.raises(CatalogError, match="must be a list"):
        Catalog.load(overrides={"provider": "x"})
    with pytest.raises(CatalogError, match=r"catalog\[0\]: expected a mapping"):
        Catalog.load(overrides=["deepseek-flash"])


def test_file_errors_name_the_file_and_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("provider: qwen\nmodels:\n"
                   "  - model: ok\n    prices: [{effective_from: null, input: '1', output: '1', source: s, verified: true}]\n"
                   "  - model: broken\n    prices: [{effective_from: null, input: '1', output: '-2', source: s, verified: true}]\n")
    with pytest.raises(CatalogError, match=rf"^{bad}: models\[1\]\.prices\[0\]\.output: must not be negative"):
        Catalog.load(files=[bad])
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CatalogError, match=rf"^{missing}: cannot read"):
        Catalog.load(files=[missing])
    broken = tmp_path / "broken.yaml"
    broken.write_text("provider: [unclosed\n")
    with pytest.raises(CatalogError, match=rf"^{broken}: not valid YAML"):
        Catalog.load(files=[broken])


def test_calendar_additions_must_have_dates() -> None:
    with pytest.raises(CatalogError, match=r"catalog\[0\]\.holidays\[0\]"):
        Catalog.load(overrides=[{"calendar": "cn-mainland", "holidays": ["not-a-date"]}])

"""Invalid scenarios fail with an error naming the file, the field and the value."""

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tollway.plan.options import build_options
from tollway.plan.scenario import ScenarioError, load_scenario, parse_scenario
from tollway.plan.workload import Workload, workload_from_spec

WORKLOAD = {"daily_input_tokens": 1000, "daily_output_tokens": 100}
PER_TOKEN = {"kind": "per_token", "name": "api", "prices": {"input": "0.3", "output": "1.2"}}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def error_of(data: dict) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, origin="s.yaml")
    return str(caught.value)


def test_negative_price_names_the_field_and_value(tmp_path):
    path = write(tmp_path, "workload: {daily_input_tokens: 1000, daily_output_tokens: 10}\n"
                           "options:\n  - {kind: per_token, name: api, prices: {input: -0.5, output: 1}}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message
    assert "options[0].prices.input" in message
    assert "greater than or equal to 0" in message and "-0.5" in message


@pytest.mark.parametrize("option, field", [
    ({"kind": "dedicated", "name": "mu", "unit_monthly_fee": 10, "unit_tpm": 0}, "options[0].unit_tpm"),
    ({"kind": "provisioned", "name": "p", "reserved_tpm": 0, "monthly_fee": 10}, "options[0].reserved_tpm"),
    ({"kind": "self_hosted", "name": "g", "gpu_hourly_usd": {"on_demand": 1}, "gpus_per_replica": 1,
      "replica_output_tokens_per_s": 0}, "options[0].replica_output_tokens_per_s"),
    ({"kind": "self_hosted", "name": "g", "gpu_hourly_usd": {"on_demand": 1}, "gpus_per_replica": 0,
      "replica_output_tokens_per_s": 10}, "options[0].gpus_per_replica"),
])
def test_capacity_of_zero_is_refused(option, field):
    message = error_of({"workload": WORKLOAD, "options": [option]})
    assert field in message
    assert "greater than" in message and "(got 0)" in message


def test_unknown_field_and_unknown_kind_are_named():
    message = error_of({"workload": WORKLOAD, "options": [{**PER_TOKEN, "prise": 1}]})
    assert "options[0].prise" in message and "Extra inputs are not permitted" in message
    message = error_of({"workload": WORKLOAD, "options": [{"kind": "magic", "name": "x"}]})
    assert "options[0]" in message and "magic" in message


def test_price_source_must_be_exactly_one():
    message = error_of({"options": [{"kind": "per_token", "name": "a", "provider": "deepseek"}]})
    assert "options[0]" in message and "provider" in message and "model" in message
    message = error_of({"options": [{**PER_TOKEN, "provider": "x", "model": "y"}]})
    assert "exactly one price source" in message


def test_workload_inconsistencies_are_named():
    message = error_of({"workload": {"daily_input_tokens": 100, "daily_cached_tokens": 200, "daily_output_tokens": 1}})
    assert "workload" in message and "daily_cached_tokens" in message
    message = error_of({"workload": {**WORKLOAD, "hourly_profile": [1, 2, 3]}})
    assert "workload.hourly_profile: has 3 values" in message
    message = error_of({"workload": {**WORKLOAD, "batchable_share": "1.5"}})
    assert "workload.batchable_share" in message and "1.5" in message
    message = error_of({"workload": {"daily_input_tokens": 0, "daily_output_tokens": 0}})
    assert "no tokens" in message


def test_peak_below_the_profiles_own_peak_is_refused():
    scenario = parse_scenario({"workload": {**WORKLOAD, "hourly_profile": [1] * 12 + [3] * 12,
                                            "peak_to_average": "1.2"}})
    with pytest.raises(ScenarioError) as caught:
        workload_from_spec(scenario.workload)
    assert "workload.peak_to_average" in str(caught.value) and "1.500" in str(caught.value)


def test_duplicate_option_names_and_self_hosted_without_price_for_its_pricing():
    message = error_of({"options": [PER_TOKEN, PER_TOKEN]})
    assert "'api' is used twice" in message
    message = error_of({"options": [{"kind": "self_hosted", "name": "g", "gpu_hourly_usd": {"on_demand": 1},
                                     "gpu_pricing": "spot", "gpus_per_replica": 1}]})
    assert "gpu_hourly_usd.spot is not set" in message


def test_self_hosted_without_any_throughput_is_refused_when_priced():
    scenario = parse_scenario({"options": [{"kind": "self_hosted", "name": "g", "gpu_hourly_usd": {"on_demand": 1},
                                            "gpus_per_replica": 1}]})
    w = Workload(daily_input_tokens=Decimal(1), daily_output_tokens=Decimal(1))
    with pytest.raises(ScenarioError) as caught:
        build_options(scenario.options, w, None, datetime(2026, 11, 23, tzinfo=timezone.utc))
    assert "options[0]" in str(caught.value) and "replica_output_tokens_per_s" in str(caught.value)


def test_catalog_priced_option_without_a_catalog_says_so():
    scenario = parse_scenario({"options": [{"kind": "per_token", "name": "a", "provider": "deepseek",
                                            "model": "deepseek-flash"}]})
    w = Workload(daily_input_tokens=Decimal(1), daily_output_tokens=Decimal(1))
    with pytest.raises(ScenarioError) as caught:
        build_options(scenario.options, w, None, datetime(2026, 11, 23, tzinfo=timezone.utc))
    assert "options[0]" in str(caught.value) and "catalog is not available" in str(caught.value)


def test_yaml_errors_and_missing_files_name_the_file(tmp_path):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(caught.value)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, "options: [\n"))
    assert "scenario.yaml: not valid YAML" in str(caught.value)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, "- just\n- a list\n"))
    assert "top level must be a mapping" in str(caught.value)


def test_yaml_floats_are_exact_decimals(tmp_path):
    text = "options:\n  - {kind: per_token, name: a, prices: {input: 0.1, output: 0.3}}\n"
    scenario = load_scenario(write(tmp_path, text))
    prices = scenario.options[0].prices
    assert prices.input == Decimal("0.1") and prices.output == Decimal("0.3")
    assert prices.input + prices.input + prices.input == prices.output

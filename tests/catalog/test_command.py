"""`tollway catalog`: the real command in a subprocess for JSON/--at, click's runner for the rest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from tests.processes import TOLLWAY
from tollway.catalog.command import catalog


def run_tollway(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "catalog", *args], capture_output=True, text=True, timeout=60)


def test_json_at_a_time_shows_the_price_in_force() -> None:
    peak = run_tollway("--json", "--provider", "deepseek", "--model", "deepseek-v4-flash", "--at", "2026-11-23T10:00+08:00")
    assert peak.returncode == 0, peak.stderr
    [row] = json.loads(peak.stdout)
    assert (row["model"], row["input"], row["cached_input"], row["output"], row["note"]) == (
        "deepseek-flash", "0.30", "0.006", "1.20", "peak")
    assert row["verified"] is True and row["effective_from"].startswith("2026-09-10")
    lunch = run_tollway("--json", "--provider", "deepseek", "--model", "deepseek-flash", "--at", "2026-11-23T12:30+08:00")
    assert json.loads(lunch.stdout)[0]["input"] == "0.15"


def test_json_without_at_lists_every_version_with_its_rules() -> None:
    result = run_tollway("--json", "--provider", "deepseek")
    assert result.returncode == 0, result.stderr
    entries = {entry["model"]: entry for entry in json.loads(result.stdout)}
    flash = entries["deepseek-flash"]
    assert "deepseek-v4-flash" in flash["aliases"]
    assert [version["effective_from"] for version in flash["prices"]] == [
        "2026-04-24T00:00:00Z", "2026-04-26T12:15:00Z", "2026-08-16T16:00:00Z", "2026-09-10T00:00:00Z"]
    assert flash["prices"][3]["peak_hours"]["windows"] == ["09:00-12:00", "14:00-18:00"]
    assert flash["prices"][3]["off_peak"] == {"input": "0.15", "cached_input": "0.003", "output": "0.60"}
    assert [price["input"] for price in flash["resolved_usd"]] == ["0.14", "0.14", "0.44", "0.30"]
    assert entries["deepseek-r1"]["prices"][0]["input"] is None  # written `unknown`


def test_config_overrides_and_cny_rate_apply(tmp_path: Path) -> None:
    config = tmp_path / "tollway.yaml"
    config.write_text(
        "cny_per_usd: '8'\n"
        "server: {port: 1}\n"  # other sections are ignored here
        "catalog:\n"
        "  - provider: mycn\n"
        "    model: m1\n"
        "    prices:\n"
        "      - {effective_from: 2026-01-01, currency: CNY, input: '4', cached_input: '0.8', output: '16',\n"
        "         source: contract, verified: true}\n")
    result = run_tollway("--json", "--config", str(config), "--provider", "mycn", "--at", "2026-11-22T00:00Z")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["input"], row["output"], row["currency"]) == ("0.5", "2", "CNY")
    assert row["original"]["input"] == "4" and row["original"]["cny_per_usd"] == "8"


def test_bad_config_entry_fails_naming_the_file_and_key_path(tmp_path: Path) -> None:
    config = tmp_path / "tollway.yaml"
    config.write_text("catalog:\n  - provider: x\n    model: y\n    prices:\n"
                      "      - {effective_from: 2026-01-01, input: '-1', output: '1', source: s, verified: true}\n")
    result = run_tollway("--config", str(config))
    assert result.returncode != 0
    assert str(config) in result.stderr
    assert "catalog[0].prices[0].input: must not be negative (got -1)" in result.stderr


def test_table_shows_rules_sources_and_unknowns() -> None:
    result = CliRunner().invoke(catalog, ["--provider", "deepseek"], terminal_width=400, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "peak Mon-Fri 09:00-12:00, 14:00-18:00 Asia/Shanghai, except cn-mainland holidays" in result.output
    assert "off-peak x0.5" in result.output
    assert "✗ seed material" in result.output
    assert "unknown" in result.output and "start unknown" in result.output


def test_table_at_a_time_marks_missing_tiers() -> None:
    result = CliRunner().invoke(catalog, ["--provider", "deepseek", "--model", "deepseek-flash", "--at",
                                          "2026-11-23T10:00+08:00", "--tier", "batch"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "no price at this time/tier" in result.output


def test_bad_at_value_is_named() -> None:
    result = CliRunner().invoke(catalog, ["--at", "yesterday"])
    assert result.exit_code != 0
    assert "'yesterday' is not an ISO date-time" in result.output


def test_bad_cny_rate_option_is_named() -> None:
    result = CliRunner().invoke(catalog, ["--cny-per-usd", "seven"])
    assert result.exit_code != 0
    assert "--cny-per-usd: cny_per_usd: 'seven' is not a number" in result.output

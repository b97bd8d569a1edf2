"""`tollway report` on a fixed ledger equals figures computed by hand."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import yaml
from click.testing import CliRunner

from tests.observe.support import row, write_ledger
from tollway.observe.report_command import report

NOW = datetime.now(UTC).replace(microsecond=0)
TS = (NOW - timedelta(hours=2)).isoformat()
FAILOVER = {"deployment": "ds-flash", "provider": "deepseek", "outcome": "failover", "kind": "server_error"}


@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.db"
    write_ledger(path, [
        row("r1", TS, cost="0.000300", prompt=1000, cached=200, completion=500, ttft=100, latency=400),
        row("r2", TS, cost="0.000700", prompt=2000, completion=1000, ttft=300, latency=900),
        row("r3", TS, provider="qwen", model="qwen3.5-plus", deployment="qwen-plus", cost="0.000150", prompt=500,
            completion=100, ttft=200, latency=1200,
            attempts=[FAILOVER, {"deployment": "qwen-plus", "provider": "qwen", "outcome": "ok"}]),
        row("r4", TS, provider="", model="", deployment="", status="error", http_status=502, latency=50,
            attempts=[FAILOVER, {"deployment": "qwen-plus", "provider": "qwen", "outcome": "failover",
                                 "kind": "timeout"}]),
        row("r5", TS, cost="0.000050", prompt=10, completion=10, shadow=1),
        row("old", (NOW - timedelta(days=10)).isoformat(), cost="9", prompt=1, completion=1, ttft=1, latency=1),
    ])
    return path


@pytest.fixture
def config(tmp_path, ledger):
    """A catalog model with round rates to price the baseline by hand: 2 in, 1 cached, 8 out per 1M."""
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump({
        "ledger": {"path": str(ledger)},
        "catalog": [{"provider": "openai", "model": "round-numbers", "prices": [
            {"effective_from": None, "input": "2", "cached_input": "1", "output": "8", "source": "test", "verified": True}]}],
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}},
        "deployments": {"d": {"provider": "p", "model": "round-numbers"}},
    }))
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(report, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout  # stderr says which ledger was found


def test_json_figures_per_provider_and_model(ledger):
    data = orjson.loads(run("--ledger", str(ledger), "--since", "7d", "--json"))
    lines = {(l["provider"], l["model"]): l for l in data["lines"]}
    assert list(lines) == [("deepseek", "deepseek-flash"), ("qwen", "qwen3.5-plus"), ("(none)", "chat")]
    ds = lines[("deepseek", "deepseek-flash")]
    assert (ds["requests"], ds["errors"], ds["fallbacks"]) == (2, 0, 0)
    assert (ds["prompt_tokens"], ds["cached_tokens"], ds["completion_tokens"]) == (3000, 200, 1500)
    assert ds["cost_usd"] == "0.001000"
    assert (ds["ttft_ms_p50"], ds["ttft_ms_p99"]) == (200, pytest.approx(298))
    assert (ds["latency_ms_p50"], ds["latency_ms_p99"]) == (650, pytest.approx(895))
    qw = lines[("qwen", "qwen3.5-plus")]
    assert (qw["requests"], qw["fallbacks"], qw["fallback_rate"], qw["cost_usd"]) == (1, 1, 1.0, "0.000150")
    failed = lines[("(none)", "chat")]
    assert (failed["requests"], failed["errors"], failed["error_rate"]) == (1, 1, 1.0)
    assert failed["latency_ms_p50"] is None, "percentiles are over answered requests only"
    total = data["total"]
    assert (total["requests"], total["errors"], total["error_rate"], total["fallback_rate"]) == (4, 1, 0.25, 0.25)
    assert Decimal(total["cost_usd"]) == Decimal("0.00115")
    assert data["shadow_cost_usd"] == "0.000050"
    assert data["attempts"] == [
        {"provider": "deepseek", "attempts": 4, "failed": 2, "failure_rate": 0.5},
        {"provider": "qwen", "attempts": 2, "failed": 1, "failure_rate": 0.5},
    ]


def test_savings_against_a_baseline_model(config):
    data = orjson.loads(run("--config", str(config), "--baseline", "openai/round-numbers", "--json"))
    lines = {(l["provider"], l["model"]): l for l in data["lines"]}
    # r1: 800*2 + 200*1 + 500*8 = 5800; r2: 2000*2 + 1000*8 = 12000 (per million) -> 0.0178
    assert Decimal(lines[("deepseek", "deepseek-flash")]["baseline_cost_usd"]) == Decimal("0.0178")
    assert Decimal(lines[("deepseek", "deepseek-flash")]["savings_usd"]) == Decimal("0.0168")
    # r3: 500*2 + 100*8 = 1800 -> 0.0018, saved 0.0018 - 0.00015
    assert Decimal(lines[("qwen", "qwen3.5-plus")]["savings_usd"]) == Decimal("0.00165")
    assert Decimal(data["total"]["savings_usd"]) == Decimal("0.01845")


def test_csv_table_and_png(ledger, tmp_path):
    rows = list(csv.DictReader(io.StringIO(run("--ledger", str(ledger), "--csv"))))
    assert [(r["provider"], r["model"], r["requests"], r["cost_usd"]) for r in rows] == [
        ("deepseek", "deepseek-flash", "2", "0.001000"), ("qwen", "qwen3.5-plus", "1", "0.000150"),
        ("(none)", "chat", "1", "0"), ("total", "", "4", "0.001150")]
    table = run("--ledger", str(ledger))
    assert "deepseek-flash" in table and "$0.001 " in table and "200 / 298" in table
    run("--ledger", str(ledger), "--png", str(tmp_path / "charts"))
    for name in ("spend-per-model.png", "latency-per-model.png", "spend-per-day.png"):
        assert (tmp_path / "charts" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_since_and_until_select_rows(ledger):
    data = orjson.loads(run("--ledger", str(ledger), "--since", "30d", "--json"))
    assert data["total"]["requests"] == 5, "the 10-day-old row is inside 30 days"
    until = (NOW - timedelta(days=5)).isoformat()
    data = orjson.loads(run("--ledger", str(ledger), "--since", "30d", "--until", until, "--json"))
    assert data["total"]["requests"] == 1 and data["total"]["cost_usd"] == "9"


@pytest.mark.parametrize("args, message", [
    (("--since", "last week"), "'last week' is not a time"),
    (("--baseline", "openai/no-such-model"), "--baseline 'openai/no-such-model': not a catalog model"),
    (("--json", "--csv"), "give --json or --csv, not both"),
])
def test_bad_input_is_named(ledger, args, message):
    result = CliRunner().invoke(report, ["--ledger", str(ledger), *args])
    assert result.exit_code != 0 and message in result.output


def test_missing_ledger_is_named(tmp_path):
    result = CliRunner().invoke(report, ["--ledger", str(tmp_path / "nope.db")])
    assert result.exit_code == 1 and f"no ledger at {tmp_path / 'nope.db'}" in result.output

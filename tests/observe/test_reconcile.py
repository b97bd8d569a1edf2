"""`tollway reconcile invoice.csv` flags the days and models where the ledger and the invoice disagree."""

from decimal import Decimal

import orjson
import pytest
from click.testing import CliRunner

from tests.observe.support import row, write_ledger
from tollway.observe.reconcile_command import reconcile


@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.db"
    write_ledger(path, [
        row("a", "2026-11-01T03:00:00+00:00", cost="0.20", prompt=1000, completion=100),
        row("b", "2026-11-01T09:00:00+00:00", cost="0.30", prompt=1000, completion=100),
        row("c", "2026-11-01T10:00:00+00:00", model="deepseek-v4-pro", deployment="ds-pro", cost="1.00",
            prompt=5000, completion=500),
        row("d", "2026-11-02T12:00:00+00:00", cost="0.40", prompt=2000, completion=200),
        row("e", "2026-11-02T13:00:00+00:00", model="deepseek-coder", deployment="ds-coder", cost="0.25",
            prompt=10, completion=10),
        row("q", "2026-11-01T11:00:00+00:00", provider="qwen", model="qwen3.5-plus", deployment="qwen-plus",
            cost="5.00", prompt=10, completion=10),  # another provider: not on this invoice
        row("late", "2026-11-05T11:00:00+00:00", cost="3.00", prompt=10, completion=10),  # after the invoice
        row("failed", "2026-11-02T14:00:00+00:00", deployment="", provider="", model="", status="error"),
    ])
    return path


def invoice(tmp_path, text: str):
    path = tmp_path / "invoice.csv"
    path.write_text(text)
    return path


def run(*args: str):
    return CliRunner().invoke(reconcile, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def test_gaps_are_flagged_by_day_and_model(tmp_path, ledger):
    csv_path = invoice(tmp_path, "Date,Model,Amount (USD)\n"
                                 "2026-11-01,deepseek-flash,$0.50\n"
                                 "2026-11-01,deepseek-v4-pro,1.20\n"
                                 "2026-11-02,deepseek-flash,0.405\n"
                                 "2026-11-02,deepseek-v4-pro,0.30\n")
    result = run(str(csv_path), "--ledger", str(ledger), "--provider", "deepseek", "--json")
    assert result.exit_code == 1, "a flagged line makes the command fail, so a scheduled job can page"
    data = orjson.loads(result.output)
    lines = {(l["day"], l["model"]): l for l in data["lines"]}
    assert lines[("2026-11-01", "deepseek-flash")]["status"] == "ok"
    gap = lines[("2026-11-01", "deepseek-v4-pro")]
    assert (gap["status"], gap["ledger_cost_usd"], gap["invoice_cost_usd"], gap["difference_usd"]) == \
        ("gap", "1.00", "1.20", "0.20")
    assert lines[("2026-11-02", "deepseek-flash")]["status"] == "ok", "0.005 is within the 0.01 USD tolerance"
    assert lines[("2026-11-02", "deepseek-v4-pro")]["status"] == "missing_in_ledger"
    assert lines[("2026-11-02", "deepseek-coder")]["status"] == "missing_in_invoice"
    assert data["flagged"] == 3
    assert (data["ledger_total_usd"], data["invoice_total_usd"]) == ("2.15", "2.405")
    table = run(str(csv_path), "--ledger", str(ledger), "--provider", "deepseek").output
    assert "3 of 5 lines flagged" in table and "missing in ledger" in table


def test_a_matching_invoice_passes(tmp_path, ledger):
    csv_path = invoice(tmp_path, "day,model,cost_usd,input_tokens,output_tokens\n"
                                 "2026-11-01,deepseek-flash,0.5,2000,200\n"
                                 "2026-11-01,deepseek-v4-pro,1.00,5000,500\n")
    result = run(str(csv_path), "--ledger", str(ledger), "--provider", "deepseek", "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["flagged"] == 0


def test_token_counts_that_disagree_are_a_gap(tmp_path, ledger):
    csv_path = invoice(tmp_path, "day,model,cost_usd,input_tokens,output_tokens\n"
                                 "2026-11-01,deepseek-flash,0.5,2000,900\n")
    result = run(str(csv_path), "--ledger", str(ledger), "--provider", "deepseek", "--json")
    assert orjson.loads(result.output)["lines"][0]["status"] == "gap"


def test_cny_invoice_in_china_time(tmp_path, ledger):
    # 2026-11-01T03:00Z .. 10:00Z are 11:00 .. 18:00 in Shanghai: all on Nov 1; 7.2 CNY = 1 USD
    csv_path = invoice(tmp_path, "日期,model,amount,currency\n"
                                 "2026-11-01,deepseek-flash,3.60,CNY\n"
                                 "2026-11-01,deepseek-v4-pro,7.20,CNY\n")
    result = run(str(csv_path), "--ledger", str(ledger), "--provider", "deepseek", "--tz", "Asia/Shanghai",
                 "--cny-per-usd", "7.2", "--date-column", "日期", "--json")
    assert result.exit_code == 0, result.output
    lines = orjson.loads(result.output)["lines"]
    assert [(l["model"], Decimal(l["invoice_cost_usd"]), l["status"]) for l in lines] == [
        ("deepseek-flash", Decimal("0.5"), "ok"), ("deepseek-v4-pro", Decimal(1), "ok")]


def test_model_map_joins_renamed_models(tmp_path, ledger):
    csv_path = invoice(tmp_path, "date,model,cost\n2026-11-01,DeepSeek-V4-Pro (API),1.00\n")
    result = run(str(csv_path), "--ledger", str(ledger), "--provider", "deepseek", "--json",
                 "--model-map", "DeepSeek-V4-Pro (API)=deepseek-v4-pro")
    lines = orjson.loads(result.output)["lines"]
    assert ("deepseek-v4-pro", "ok") in [(l["model"], l["status"]) for l in lines]


@pytest.mark.parametrize("text, args, message", [
    ("when,what,much\n2026-11-01,x,1\n", (), "cannot find the date column"),
    ("date,model,cost\n2026-11-01,x,one dollar\n", (), "line 2, column cost: 'one dollar' is not an amount"),
    ("date,model,cost\nyesterday,x,1\n", (), "line 2, column date: 'yesterday' is not a date"),
    ("date,model,cost\n2026-11-01,x,1\n", ("--currency", "CNY"), "amounts are in CNY; give --cny-per-usd"),
    ("date,model,cost\n2026-11-01,x,1\n", ("--tz", "Mars/Olympus"), "is not a time zone"),
    ("date,model,cost\n2026-11-01,x,1\n", ("--model-map", "nonsense"), "use INVOICE_NAME=LEDGER_NAME"),
])
def test_bad_input_is_named(tmp_path, ledger, text, args, message):
    result = CliRunner().invoke(reconcile, [str(invoice(tmp_path, text)), "--ledger", str(ledger), *args])
    assert result.exit_code not in (0, None) and message in result.output, result.output

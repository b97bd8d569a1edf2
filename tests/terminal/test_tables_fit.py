"""`tollway usage` and `tollway report` tables at 80 and 120 columns: no figure cut, every key figure shown."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rich.console import Console

from tests.observe.support import row
from tollway.accounting.usage_report import UsageLine, usage_table
from tollway.core.money_text import usd_text
from tollway.observe.report_command import report_tables
from tollway.observe.report_data import build_report
from tollway.terminal.tables import TableSpec, print_fitted

CUT = ("…", "...")


def render(specs: list[TableSpec], width: int, wide: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_fitted(console, specs, wide)
    return console.file.getvalue()


def usage_lines() -> list[UsageLine]:
    return [UsageLine("2026-12-01", "deepseek-flash", "deepseek", 12_345, 17, 98_765_432, 1_234_567, 21_000_000, 0,
                      3, 0, Decimal("212.345678901")),
            UsageLine("2026-12-01", "qwen3.5-plus", "qwen", 2, 0, 1_200, 0, 300, 0, 0, 0, Decimal("0.000423456789")),
            UsageLine("2026-12-02", "kimi-k2-thinking-turbo", "moonshot", 40, 1, 52_000, 0, 18_000, 9_000, 0, 40,
                      Decimal("0.012345"))]


@pytest.mark.parametrize("width", [80, 120])
def test_usage_keeps_day_model_requests_and_cost_whole(width):
    lines = usage_lines()
    text = render([usage_table(lines)], width)
    assert not any(cut in text for cut in CUT), text
    assert max(len(line) for line in text.splitlines()) <= width, text
    for line in lines:
        assert line.day in text and line.model in text and f"{line.requests:,}" in text
        assert usd_text(line.cost_usd) in text
    assert "$212.36" in text and "$0.000423" in text and "$0.01" in text
    assert usd_text(sum((l.cost_usd for l in lines), Decimal(0))) in text
    if width == 80:
        assert "not shown at 80 columns" in text and "--wide" in text


def test_usage_wide_shows_every_column_even_on_a_narrow_screen():
    text = render([usage_table(usage_lines())], 80, wide=True)
    assert not any(cut in text for cut in CUT), text
    for header in ("provider", "errors", "prompt", "completion", "cached", "est.", "unpriced", "cost"):
        assert header in text
    assert "98,765,432" in text and "21,000,000" in text and "not shown" not in text


def report_rows():
    ts = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return [row("a", ts, cost="0.001234567", prompt=123_456, completion=45_678, cached=1_000, ttft=1234.5,
                latency=15432.1),
            row("b", ts, cost="17.5", prompt=9_876_543, completion=1_234_567, ttft=250, latency=9000),
            row("c", ts, provider="qwen", model="qwen3.5-plus-2026-long-snapshot-name", deployment="qwen-plus",
                cost="0.000000123", prompt=5, completion=1, ttft=90, latency=100),
            row("d", ts, provider="", model="", deployment="", status="error", http_status=502)]


@pytest.mark.parametrize("width", [80, 120])
def test_report_keeps_provider_model_requests_and_spend_whole(width):
    result = build_report(report_rows())
    text = render(report_tables(result), width)
    assert not any(cut in text for cut in CUT), text
    for line in result.lines:
        assert line.provider in text and f"{line.requests:,}" in text and usd_text(line.cost_usd) in text
    assert "deepseek-flash" in text and "$17.50" in text and "$0.000000123" in text
    assert usd_text(result.total.cost_usd) in text  # $17.50: the total of 17.5 + 0.0012 + 0.0000001
    assert max(len(line) for line in text.splitlines()) <= width, text
    if width == 120:  # room for the error rate and TTFT: p50 / p99 of 1234.5 and 250 ms
        assert "TTFT p50/p99 ms" in text and "742 / 1,225" in text and "25.0" in text
    else:
        assert "not shown at 80 columns" in text


def test_report_with_a_baseline_keeps_the_savings_at_80_columns():
    result = build_report(report_rows(), baseline=lambda r: Decimal("2") * Decimal(r.cost_usd),
                          baseline_name="openai/gpt-4o")
    text = render(report_tables(result), 80)
    assert not any(cut in text for cut in CUT), text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "savings against openai/gpt-4o" in text and "baseline" in text and "saved" in text
    assert "$35.00" in text and "$0.000000246" in text
    assert usd_text(result.total.savings_usd) in text

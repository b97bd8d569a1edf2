"""Terminal tables: every target side by side at every load level, then the capacity each one reached.

Why side by side: the question is "which deployment option serves this workload best", so rows for the
same load sit next to each other and differences read down a column. Why key columns: at 80 columns the
load, target, rate, TTFT, E2E p99 and goodput answer that question; the other columns join as the screen
allows, and `--wide` shows them all.
"""

from __future__ import annotations

from rich.console import Console

from tollway.bench.level_summary import LevelSummary
from tollway.bench.runner import BenchResult
from tollway.bench.stats import Summary
from tollway.terminal.tables import Column, TableSpec, print_fitted

ERROR_LABELS = {"rate_limited": "429", "server_error": "5xx", "client_error": "4xx", "timeout": "timeout",
                "connection": "conn", "stream_cut": "cut", "stream_error": "stream-err", "bad_response": "bad"}


def _ms(dist: Summary | None, stat: str = "p50") -> str:
    if dist is None:
        return "-"
    value = getattr(dist, stat)
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _ci(dist: Summary | None) -> str:
    if dist is None:
        return "-"
    return f"[{_ms(dist, 'p99_ci_low')}-{_ms(dist, 'p99_ci_high')}]"


def error_text(summary: LevelSummary) -> str:
    """A compact error breakdown such as '429x3 RA:3, timeoutx1' (RA: how many 429s carried Retry-After)."""
    parts = []
    for kind, label in ERROR_LABELS.items():
        count = summary.errors.get(kind, 0)
        if not count:
            continue
        text = f"{label}x{count}"
        if kind == "rate_limited" and summary.errors.get("retry_after_seen"):
            text += f" RA:{summary.errors['retry_after_seen']}"
        parts.append(text)
    return ", ".join(parts) or "-"


def results_table(result: BenchResult) -> TableSpec:
    """Key columns: load, target, req/s, TTFT p50/p99, E2E p99, goodput (and errors when there were any)."""
    slo = result.config.slo.describe()
    open_loop = [lv for lv in result.config.levels if lv.mode != "concurrency"]
    loop = f"open loop, {open_loop[0].arrivals} arrivals" if open_loop else "closed loop"
    summaries = [s for target_result in result.results for s in target_result.levels]
    any_errors = any(error_text(s) != "-" for s in summaries)
    table = TableSpec(f"tollway bench ({loop}): latencies in ms, [CI] = 95% interval of p99; SLO {slo}", [
        Column("load", key=True, left=True), Column("target", key=True, left=True, wrap=True),
        Column("ok/sent", rank=4), Column("req/s", key=True), Column("out tok/s", rank=3),
        Column("TTFT p50", key=True), Column("TTFT p99", key=True), Column("TTFT p99 CI", rank=8),
        Column("TPOT p50", rank=1), Column("TPOT p99", rank=6), Column("ITL/token p99", rank=7),
        Column("E2E p50", rank=5), Column("E2E p99", key=True), Column("E2E p99 CI", rank=9),
        Column("goodput", key=True), Column("errors", key=any_errors, left=True, phrase=True, rank=2)],
        caption="RA: 429 responses that carried Retry-After. Definitions: docs/bench.md")
    by_level: dict[tuple[str, float], list[LevelSummary]] = {}
    for summary in summaries:
        by_level.setdefault((summary.mode, summary.level), []).append(summary)
    for index, key in enumerate(sorted(by_level)):
        if index:
            table.add_section()
        for summary in by_level[key]:
            lat = summary.latency_ms
            table.add_row(
                summary.label if summary.valid else f"{summary.label} [red]invalid[/red]", summary.target,
                f"{summary.ok_requests}/{summary.measured_requests}", f"{summary.throughput.requests_per_s:.2f}",
                f"{summary.throughput.output_tokens_per_s:,.0f}", _ms(lat["ttft"]), _ms(lat["ttft"], "p99"),
                _ci(lat["ttft"]), _ms(lat["tpot"]), _ms(lat["tpot"], "p99"), _ms(lat["itl_token"], "p99"),
                _ms(lat["e2e"]), _ms(lat["e2e"], "p99"), _ci(lat["e2e"]), f"{summary.goodput.share:.0%}",
                error_text(summary))
    return table


def capacity_table(result: BenchResult) -> TableSpec:
    report = result.capacity
    columns = [Column("target", key=True, left=True, wrap=True), Column("model", left=True, wrap=True, rank=2),
               Column("max load", key=True), Column("req/s", key=True), Column("out tok/s", key=True),
               Column("total tok/s", rank=1), Column("goodput", key=True), Column("note", key=True, left=True, phrase=True)]
    table = TableSpec(f"capacity: highest load with goodput >= {report.goodput_target:.0%} "
                      f"(SLO {result.config.slo.describe()})", columns)
    for cap in report.targets.values():
        if not cap.met:
            table.add_row(cap.target, cap.model, "-", "-", "-", "-", "-", "[red]no level met the SLOs[/red]")
            continue
        load = f"c={cap.max_concurrency}" if cap.max_concurrency is not None else f"{cap.max_rate:g} req/s"
        table.add_row(cap.target, cap.model, load, f"{cap.requests_per_s:.2f}", f"{cap.output_tokens_per_s:,.0f}",
                      f"{cap.total_tokens_per_s:,.0f}", f"{cap.goodput_share:.0%}",
                      "" if cap.bounded else "lower bound: sweep higher")
    return table


def print_report(result: BenchResult, console: Console, wide: bool = False) -> None:
    """Results, capacity, then every note, warning and invalid-run reason."""
    print_fitted(console, [results_table(result), capacity_table(result)], wide)
    for target_result in result.results:
        for note in target_result.notes:
            console.print(f"[yellow]note[/yellow] {target_result.target.name}: {note}")
        for summary in target_result.levels:
            for reason in summary.invalid_reasons:
                console.print(f"[red]invalid[/red] {summary.target} {summary.label}: {reason}")
            for warning in summary.warnings:
                console.print(f"[yellow]warning[/yellow] {summary.target} {summary.label}: {warning}")

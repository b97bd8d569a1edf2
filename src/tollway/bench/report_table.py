"""Terminal tables: every target side by side at every load level, then the capacity each one reached.

Why side by side: the question is "which deployment option serves this workload best", so rows for the
same load sit next to each other and differences read down a column.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tollway.bench.level_summary import LevelSummary
from tollway.bench.runner import BenchResult
from tollway.bench.stats import Summary

ERROR_LABELS = {"rate_limited": "429", "server_error": "5xx", "client_error": "4xx", "timeout": "timeout",
                "connection": "conn", "stream_cut": "cut", "stream_error": "stream-err", "bad_response": "bad"}


def _ms(dist: Summary | None, stat: str = "p50") -> str:
    if dist is None:
        return "-"
    value = getattr(dist, stat)
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _p99(dist: Summary | None) -> str:
    if dist is None:
        return "-"
    return f"{_ms(dist, 'p99')} [{_ms(dist, 'p99_ci_low')}-{_ms(dist, 'p99_ci_high')}]"


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


def results_table(result: BenchResult) -> Table:
    slo = result.config.slo.describe()
    open_loop = [lv for lv in result.config.levels if lv.mode != "concurrency"]
    loop = f"open loop, {open_loop[0].arrivals} arrivals" if open_loop else "closed loop"
    table = Table(title=f"tollway bench ({loop}): latencies in ms, [CI] = 95% interval of p99; SLO {slo}",
                  caption="RA: 429 responses that carried Retry-After. Definitions: docs/bench.md",
                  header_style="bold")
    for column in ("load", "target", "ok/sent", "req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50",
                   "TPOT p99", "ITL/token p99", "E2E p50", "E2E p99", "goodput", "errors", "valid"):
        table.add_column(column, justify="left" if column in ("load", "target", "errors") else "right")
    by_level: dict[tuple[str, float], list[LevelSummary]] = {}
    for target_result in result.results:
        for summary in target_result.levels:
            by_level.setdefault((summary.mode, summary.level), []).append(summary)
    for index, key in enumerate(sorted(by_level)):
        if index:
            table.add_section()
        for summary in by_level[key]:
            lat = summary.latency_ms
            table.add_row(
                summary.label, summary.target, f"{summary.ok_requests}/{summary.measured_requests}",
                f"{summary.throughput.requests_per_s:.2f}", f"{summary.throughput.output_tokens_per_s:,.0f}",
                _ms(lat["ttft"]), _p99(lat["ttft"]), _ms(lat["tpot"]), _ms(lat["tpot"], "p99"),
                _ms(lat["itl_token"], "p99"), _ms(lat["e2e"]), _p99(lat["e2e"]),
                f"{summary.goodput.share:.0%}", error_text(summary),
                "yes" if summary.valid else "[red]NO[/red]")
    return table


def capacity_table(result: BenchResult) -> Table:
    report = result.capacity
    table = Table(title=f"capacity: highest load with goodput >= {report.goodput_target:.0%} "
                        f"(SLO {result.config.slo.describe()})", header_style="bold")
    for column in ("target", "model", "max load", "req/s", "out tok/s", "total tok/s", "goodput", "note"):
        table.add_column(column, justify="left" if column in ("target", "model", "note") else "right")
    for cap in report.targets.values():
        if not cap.met:
            table.add_row(cap.target, cap.model, "-", "-", "-", "-", "-", "[red]no level met the SLOs[/red]")
            continue
        load = f"c={cap.max_concurrency}" if cap.max_concurrency is not None else f"{cap.max_rate:g} req/s"
        table.add_row(cap.target, cap.model, load, f"{cap.requests_per_s:.2f}", f"{cap.output_tokens_per_s:,.0f}",
                      f"{cap.total_tokens_per_s:,.0f}", f"{cap.goodput_share:.0%}",
                      "" if cap.bounded else "lower bound: sweep higher")
    return table


def print_report(result: BenchResult, console: Console) -> None:
    """Results, capacity, then every note, warning and invalid-run reason."""
    console.print(results_table(result))
    console.print(capacity_table(result))
    for target_result in result.results:
        for note in target_result.notes:
            console.print(f"[yellow]note[/yellow] {target_result.target.name}: {note}")
        for summary in target_result.levels:
            for reason in summary.invalid_reasons:
                console.print(f"[red]invalid[/red] {summary.target} {summary.label}: {reason}")
            for warning in summary.warnings:
                console.print(f"[yellow]warning[/yellow] {summary.target} {summary.label}: {warning}")

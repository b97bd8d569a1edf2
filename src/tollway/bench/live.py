"""The live progress display: running figures while a level runs, one summary line when it ends.

Why so little: the display shares the client's CPU, and a busy client distorts the measurement. It
redraws twice a second from a few counters and a bounded window of recent latencies; everything exact is
computed after the level from the records.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tollway.bench.level_summary import LevelSummary
from tollway.bench.loadgen import LoadLevel, RunBounds
from tollway.bench.record import RequestRecord
from tollway.bench.report_table import error_text
from tollway.bench.targets import Target

WINDOW = 500


class LiveProgress:
    """A runner Progress that draws with rich; with `animate` False it prints one line per level."""

    def __init__(self, console: Console, animate: bool) -> None:
        self.console = console
        self.animate = animate
        self._live: Live | None = None
        self._reset(None, None, None)

    def _reset(self, target: Target | None, level: LoadLevel | None, bounds: RunBounds | None) -> None:
        self.target, self.level, self.bounds = target, level, bounds
        self.started = time.monotonic()
        self.done = self.ok = self.failed = self.warmup = self.output_tokens = 0
        self.ttft_ms: deque[float] = deque(maxlen=WINDOW)
        self.tpot_ms: deque[float] = deque(maxlen=WINDOW)

    def level_started(self, target: Target, level: LoadLevel, bounds: RunBounds) -> None:
        self._reset(target, level, bounds)
        if self.animate and self._live is None:
            self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=2,
                              transient=True)
            self._live.start()

    def on_record(self, record: RequestRecord) -> None:
        if not record.measured:
            self.warmup += 1
            return
        self.done += 1
        if not record.ok:
            self.failed += 1
            return
        self.ok += 1
        tokens = record.completion_tokens or 0
        self.output_tokens += tokens
        if record.content_ns:
            ttft_ns = record.content_ns[0] - record.origin_ns
            self.ttft_ms.append(ttft_ns / 1e6)
            if tokens > 1:
                self.tpot_ms.append((record.end_ns - record.origin_ns - ttft_ns) / 1e6 / (tokens - 1))

    def level_finished(self, summary: LevelSummary) -> None:
        ttft, tpot = summary.latency_ms["ttft"], summary.latency_ms["tpot"]
        self.console.print(
            f"{summary.target} {summary.label}: {summary.ok_requests}/{summary.measured_requests} ok, "
            f"{summary.throughput.requests_per_s:.2f} req/s, {summary.throughput.output_tokens_per_s:,.0f} out tok/s, "
            f"TTFT p50 {ttft.p50 if ttft else float('nan'):.1f} ms, TPOT p50 {tpot.p50 if tpot else float('nan'):.1f} ms, "
            f"goodput {summary.goodput.share:.0%}, errors {error_text(summary)}"
            + ("" if summary.valid else " [red]INVALID[/red]"))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Table:
        elapsed = time.monotonic() - self.started
        table = Table(title="tollway bench (running)", show_header=True, header_style="bold")
        for column in ("target", "load", "elapsed", "done", "ok", "failed", "warm-up", "req/s", "out tok/s",
                       "TTFT p50 ms", "TPOT p50 ms"):
            table.add_column(column, justify="right")
        name = self.target.name if self.target else "-"
        label = self.level.label if self.level else "-"
        goal = ""
        if self.bounds is not None and self.bounds.requests:
            goal = f"/{self.bounds.requests}"
        table.add_row(name, label, f"{elapsed:.0f}s", f"{self.done}{goal}", str(self.ok), str(self.failed),
                      str(self.warmup), f"{self.ok / elapsed:.2f}" if elapsed > 0 else "-",
                      f"{self.output_tokens / elapsed:,.0f}" if elapsed > 0 else "-",
                      _median(self.ttft_ms), _median(self.tpot_ms))
        return table


def _median(values: deque[float]) -> str:
    return f"{float(np.median(values)):.1f}" if values else "-"

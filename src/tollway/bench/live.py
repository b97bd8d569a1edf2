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
from rich.text import Text

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
        self.completions: deque[tuple[float, int]] = deque(maxlen=WINDOW)  # (monotonic time, output tokens)

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
        self.completions.append((time.monotonic(), tokens))
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
            f"TTFT p50 {ttft.p50 if ttft else float('nan'):.1f} ms, "
            f"TPOT p50 {tpot.p50 if tpot else float('nan'):.1f} ms, "
            f"goodput {summary.goodput.share:.0%}, errors {error_text(summary)}"
            + ("" if summary.valid else " [red]INVALID[/red]"))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Text:
        elapsed = time.monotonic() - self.started
        name = self.target.name if self.target else "-"
        label = self.level.label if self.level else "-"
        goal = f"/{self.bounds.requests}" if self.bounds is not None and self.bounds.requests else ""
        rate, tokens = self._recent_rates()
        return Text.assemble(
            ("running ", "bold"), (f"{name} {label}", "cyan"), f" | {elapsed:.0f}s | {self.done}{goal} done ",
            (f"({self.ok} ok, {self.failed} failed)", "red" if self.failed else ""), f", {self.warmup} warm-up | ",
            f"{rate} req/s | {tokens} out tok/s | TTFT p50 {_median(self.ttft_ms)} ms | "
            f"TPOT p50 {_median(self.tpot_ms)} ms")


    def _recent_rates(self) -> tuple[str, str]:
        """Requests/s and output tokens/s over the last WINDOW completions (warm-up excluded)."""
        if len(self.completions) < 2:
            return "-", "-"
        span = self.completions[-1][0] - self.completions[0][0]
        if span <= 0:
            return "-", "-"
        later_tokens = sum(tokens for _, tokens in list(self.completions)[1:])
        return f"{(len(self.completions) - 1) / span:.2f}", f"{later_tokens / span:,.0f}"


def _median(values: deque[float]) -> str:
    return f"{float(np.median(values)):.1f}" if values else "-"

"""Watch the benchmark client itself: event-loop lag, send delay and CPU use.

Why: a Python client that is short of CPU stamps events late, and the lateness looks exactly like a slow
server. Three measurements bound what the client itself adds:
- event-loop lag: a sampler task asks the loop to wake it every few milliseconds and records how late
  it woke; an arriving byte waits about as long before it is stamped;
- send delay: per request, from when it was due (its scheduled time, or when a closed-loop worker asked
  to send it) to when its last byte was written; open-loop latency includes it, closed-loop throughput
  loses it;
- CPU: process CPU time over wall time, how close the client is to saturating its one core.
Each is compared with the figures it could distort (TTFT, ITL, E2E medians), not only with a fixed
threshold, so an inflation that is small in milliseconds but large against a fast server is flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tollway.bench.record import RequestRecord

SAMPLE_INTERVAL_S = 0.005
LAG_P99_WARN_MS = 5.0
LAG_SHARE_OF_ITL_WARN = 0.05
LAG_SHARE_OF_TTFT_WARN = 0.02
SEND_DELAY_SHARE_WARN = 0.02
CPU_WARN_PERCENT = 85.0


@dataclass(frozen=True, slots=True)
class ClientLoad:
    """How busy the client was during one load level."""

    loop_lag_p50_ms: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    cpu_percent: float
    wall_s: float
    send_delay_p50_ms: float = 0.0
    send_delay_p99_ms: float = 0.0
    send_delay_max_ms: float = 0.0


class ClientMonitor:
    """Samples event-loop lag while running; `stop()` returns a ClientLoad."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._lags_ns: list[int] = []
        self._task: asyncio.Task | None = None
        self._cpu0 = 0.0
        self._wall0 = 0

    def start(self) -> None:
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter_ns()
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        interval_ns = int(self.interval_s * 1e9)
        while True:
            before = time.perf_counter_ns()
            await asyncio.sleep(self.interval_s)
            self._lags_ns.append(max(0, time.perf_counter_ns() - before - interval_ns))

    @property
    def current_lag_ms(self) -> float:
        """The most recent lag sample (for the live display)."""
        return self._lags_ns[-1] / 1e6 if self._lags_ns else 0.0

    async def stop(self, records: Sequence[RequestRecord] = ()) -> ClientLoad:
        """End sampling; the measured ones of `records` (the level's requests) give the send delays."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        wall_s = (time.perf_counter_ns() - self._wall0) / 1e9
        cpu_percent = 100.0 * (time.process_time() - self._cpu0) / wall_s if wall_s > 0 else 0.0
        lags = np.asarray(self._lags_ns or [0], dtype=np.float64) / 1e6
        delays = np.asarray([r.sent_ns - r.due_ns for r in records if r.measured and r.sent_ns and r.due_ns] or [0],
                            dtype=np.float64) / 1e6
        return ClientLoad(float(np.percentile(lags, 50)), float(np.percentile(lags, 99)), float(lags.max()),
                          cpu_percent, wall_s, float(np.percentile(delays, 50)), float(np.percentile(delays, 99)),
                          float(delays.max()))


def load_warnings(load: ClientLoad, medians_ms: dict[str, float | None] | None = None,
                  open_loop: bool = False) -> list[str]:
    """Reasons to distrust the figures of a level because the client, not the server, was busy.

    medians_ms: the level's "ttft", "itl" and "e2e" medians, against which each lateness is weighed.
    """
    medians = {k: v for k, v in (medians_ms or {}).items() if v}
    lag, found = load.loop_lag_p99_ms, []
    if lag > LAG_P99_WARN_MS:
        found.append(f"client event-loop lag p99 {lag:.1f} ms (> {LAG_P99_WARN_MS:g} ms): "
                     "latencies may be inflated by up to that much")
    if "itl" in medians and lag > LAG_SHARE_OF_ITL_WARN * medians["itl"]:
        found.append(f"client event-loop lag p99 {lag:.2f} ms is {lag / medians['itl']:.0%} of the median ITL "
                     f"({medians['itl']:.1f} ms; flagged above {LAG_SHARE_OF_ITL_WARN:.0%}): ITL may be inflated")
    if "ttft" in medians and lag > LAG_SHARE_OF_TTFT_WARN * medians["ttft"]:
        found.append(f"client event-loop lag p99 {lag:.2f} ms is {lag / medians['ttft']:.1%} of the median TTFT "
                     f"({medians['ttft']:.1f} ms; flagged above {LAG_SHARE_OF_TTFT_WARN:.0%}): TTFT may be inflated")
    found += _send_delay_warnings(load, medians, open_loop)
    if load.cpu_percent > CPU_WARN_PERCENT:
        found.append(f"client CPU at {load.cpu_percent:.0f}% of one core (> {CPU_WARN_PERCENT:g}%): "
                     "the client may be the bottleneck; see `tollway bench --calibrate`")
    return found


def _send_delay_warnings(load: ClientLoad, medians: dict[str, float], open_loop: bool) -> list[str]:
    """Open loop: latency counts from the schedule, so the delay is in TTFT. Closed loop: the clock starts
    at the write, so the delay is not in latency, but each worker idles through it and offers less load."""
    p50, p99 = load.send_delay_p50_ms, load.send_delay_p99_ms
    against = "ttft" if open_loop else "e2e"
    if against not in medians or p99 <= SEND_DELAY_SHARE_WARN * medians[against]:
        return []
    what = ("TTFT and E2E include it" if open_loop else
            "latency excludes it, but the workers sat idle through it, so the offered load was lower")
    return [f"client send delay (due -> request written) p50/p99 {p50:.2f}/{p99:.2f} ms is "
            f"{p99 / medians[against]:.1%} of the median {against.upper()} ({medians[against]:.1f} ms; flagged "
            f"above {SEND_DELAY_SHARE_WARN:.0%}): {what}"]

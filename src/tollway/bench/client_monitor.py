"""Watch the benchmark client itself: event-loop lag and CPU use.

Why: a Python client that is short of CPU stamps events late, and the lateness looks exactly like a slow
server. A sampler task asks the loop to wake it every few milliseconds and records how late it woke; the
process CPU time over wall time tells how close the client is to saturating its one core. Both go into
the report, with warnings when they are large enough to distort the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import numpy as np

SAMPLE_INTERVAL_S = 0.005
LAG_P99_WARN_MS = 5.0
LAG_SHARE_OF_ITL_WARN = 0.20
CPU_WARN_PERCENT = 85.0


@dataclass(frozen=True, slots=True)
class ClientLoad:
    """How busy the client was during one load level."""

    loop_lag_p50_ms: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    cpu_percent: float
    wall_s: float


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

    async def stop(self) -> ClientLoad:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        wall_s = (time.perf_counter_ns() - self._wall0) / 1e9
        cpu_percent = 100.0 * (time.process_time() - self._cpu0) / wall_s if wall_s > 0 else 0.0
        lags = np.asarray(self._lags_ns or [0], dtype=np.float64) / 1e6
        return ClientLoad(float(np.percentile(lags, 50)), float(np.percentile(lags, 99)), float(lags.max()),
                          cpu_percent, wall_s)


def load_warnings(load: ClientLoad, itl_p50_ms: float | None = None) -> list[str]:
    """Reasons to distrust the figures of a level because the client, not the server, was busy."""
    found = []
    if load.loop_lag_p99_ms > LAG_P99_WARN_MS:
        found.append(f"client event-loop lag p99 {load.loop_lag_p99_ms:.1f} ms (> {LAG_P99_WARN_MS:g} ms): "
                     "latencies may be inflated by up to that much")
    if itl_p50_ms and load.loop_lag_p99_ms > LAG_SHARE_OF_ITL_WARN * itl_p50_ms:
        found.append(f"client event-loop lag p99 {load.loop_lag_p99_ms:.1f} ms is over "
                     f"{LAG_SHARE_OF_ITL_WARN:.0%} of the median ITL ({itl_p50_ms:.1f} ms): ITL is unreliable")
    if load.cpu_percent > CPU_WARN_PERCENT:
        found.append(f"client CPU at {load.cpu_percent:.0f}% of one core (> {CPU_WARN_PERCENT:g}%): "
                     "the client may be the bottleneck; see `tollway bench --calibrate`")
    return found

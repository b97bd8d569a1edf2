"""Load generation: closed loop at a fixed concurrency, open loop at a fixed rate.

Why these two and nothing else:
- Closed loop: each of N workers sends its next request the moment its last one ends. Load is continuous,
  never lockstep batches (a batch waits for its slowest member, which hides the server's real rate).
- Open loop: requests leave on a schedule (Poisson or constant) that does not care how the server is
  doing. Latency is measured from the *scheduled* time, so a server (or client) that falls behind shows
  it as latency instead of quietly lowering the offered load.
Warm-up requests are sent the same way but marked unmeasured. Request i is always workload.request(i),
so every target sees the same requests in the same order.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tollway.bench.client_monitor import ClientLoad, ClientMonitor
from tollway.bench.record import RequestRecord
from tollway.bench.sse_client import StreamingClient
from tollway.bench.workload import Workload

CONCURRENCY = "concurrency"
RATE = "rate"
POISSON = "poisson"
CONSTANT = "constant"
SCHEDULE_LEAD_S = 0.02

OnRecord = Callable[[RequestRecord], None]


@dataclass(frozen=True, slots=True)
class LoadLevel:
    """One point of a run: a concurrency (closed loop) or a request rate in requests/s (open loop)."""

    mode: str
    value: float
    arrivals: str = POISSON

    @property
    def label(self) -> str:
        if self.mode == CONCURRENCY:
            return f"c={int(self.value)}"
        return f"{self.value:g} req/s"


@dataclass(frozen=True, slots=True)
class RunBounds:
    """When a level stops issuing measured requests, and what comes before it.

    duration_s / requests: stop issuing after this long (from the first measured request) or this many
    measured requests, whichever comes first; in-flight requests are then awaited, never dropped.
    warmup_s / warmup_requests: requests started during the first warmup_s seconds, or the first
    warmup_requests requests, are sent but not counted.
    max_inflight: open loop only; a full client waits, which shows up as schedule lag.
    """

    duration_s: float | None = None
    requests: int | None = None
    warmup_s: float = 0.0
    warmup_requests: int = 0
    max_inflight: int = 1024

    def __post_init__(self) -> None:
        if self.duration_s is None and self.requests is None:
            raise ValueError("a run needs a duration or a request count")


@dataclass(slots=True)
class LevelRun:
    """Everything observed while running one level."""

    level: LoadLevel
    records: list[RequestRecord]
    client: ClientLoad
    inflight_cap_waits: int = 0


class _Budget:
    """Decides, request by request, whether the next one is warm-up, measured, or not sent at all."""

    def __init__(self, bounds: RunBounds, start_ns: int) -> None:
        self.bounds = bounds
        self.warm_until_ns = start_ns + int(bounds.warmup_s * 1e9)
        self.measure_start_ns: int | None = None
        self.measured = 0

    def admit(self, index: int, now_ns: int) -> bool | None:
        """True: measured; False: warm-up; None: the level is over."""
        if index < self.bounds.warmup_requests or now_ns < self.warm_until_ns:
            return False
        if self.measure_start_ns is None:
            self.measure_start_ns = now_ns
        if self.bounds.requests is not None and self.measured >= self.bounds.requests:
            return None
        if self.bounds.duration_s is not None and now_ns - self.measure_start_ns >= self.bounds.duration_s * 1e9:
            return None
        self.measured += 1
        return True


async def run_closed(client: StreamingClient, workload: Workload, level: LoadLevel, bounds: RunBounds,
                     on_record: OnRecord | None = None) -> LevelRun:
    """Closed loop: `level.value` workers, each sending its next request as soon as the last ends."""
    monitor = ClientMonitor()
    monitor.start()
    records: list[RequestRecord] = []
    budget = _Budget(bounds, time.perf_counter_ns())
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while True:
            index = next(counter)
            measured = budget.admit(index, time.perf_counter_ns())
            if measured is None:
                return
            record = await client.send(workload.request(index), measured)
            records.append(record)
            if on_record:
                on_record(record)

    await asyncio.gather(*(worker() for _ in range(int(level.value))))
    return LevelRun(level, records, await monitor.stop(records))


def arrival_offsets(rate: float, arrivals: str, seed: int) -> Iterator[float]:
    """Seconds from the start at which each request is due; seeded, so every target gets one schedule."""
    if arrivals == CONSTANT:
        index = 0
        while True:
            yield index / rate
            index += 1
    rng = random.Random(f"{seed}/arrivals/{rate!r}")
    offset = 0.0
    while True:
        yield offset
        offset += rng.expovariate(rate)


async def run_open(client: StreamingClient, workload: Workload, level: LoadLevel, bounds: RunBounds,
                   seed: int, on_record: OnRecord | None = None) -> LevelRun:
    """Open loop: send request i at its scheduled time whatever the state of earlier requests."""
    monitor = ClientMonitor()
    monitor.start()
    records: list[RequestRecord] = []
    slots = asyncio.Semaphore(bounds.max_inflight)
    tasks: set[asyncio.Task] = set()
    start_ns = time.perf_counter_ns() + int(SCHEDULE_LEAD_S * 1e9)
    budget = _Budget(bounds, start_ns)
    cap_waits = 0

    async def send(index: int, measured: bool, scheduled_ns: int) -> None:
        try:
            record = await client.send(workload.request(index), measured, scheduled_ns)
        finally:
            slots.release()
        records.append(record)
        if on_record:
            on_record(record)

    for index, offset in enumerate(arrival_offsets(level.value, level.arrivals, workload.seed)):
        scheduled_ns = start_ns + int(offset * 1e9)
        measured = budget.admit(index, scheduled_ns)
        if measured is None:
            break
        delay_s = (scheduled_ns - time.perf_counter_ns()) / 1e9
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if slots.locked():
            cap_waits += 1
        await slots.acquire()
        task = asyncio.get_running_loop().create_task(send(index, measured, scheduled_ns))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return LevelRun(level, records, await monitor.stop(records), cap_waits)

"""Run a benchmark: probe every target, then run each load level against each target in turn.

Why sequential targets: two targets measured at the same time compete for the client's CPU and network,
so their figures would depend on each other. Each target gets the identical workload (same requests,
same order, same arrival schedule); levels run from lightest to heaviest.

Why probe first: a typo in a URL, a wrong model name or a missing key should fail in a second with a
message naming the target, not after minutes of load against the other targets. The probe also finds
out whether the server accepts min_tokens/ignore_eos (exact output lengths) and reports usage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import aiohttp

from tollway.bench.capacity import CapacityReport, capacity_report, qualifies
from tollway.bench.level_summary import LevelSummary, summarize_level
from tollway.bench.loadgen import CONCURRENCY, LevelRun, LoadLevel, RunBounds, run_closed, run_open
from tollway.bench.record import CLIENT_ERROR, RequestRecord
from tollway.bench.slo import Slo
from tollway.bench.sse_client import StreamingClient, request_trace
from tollway.bench.targets import Target
from tollway.bench.workload import RequestSpec, Workload

PROBE_SPEC = RequestSpec(index=-1, messages=({"role": "user", "content": "Say hello."},), output_tokens=4)


class BenchError(RuntimeError):
    """A benchmark that cannot start (e.g. a target that does not answer); the message names the target."""


class Progress(Protocol):
    """What the runner tells a display while it works."""

    def level_started(self, target: Target, level: LoadLevel, bounds: RunBounds) -> None: ...

    def on_record(self, record: RequestRecord) -> None: ...

    def level_finished(self, summary: LevelSummary) -> None: ...


@dataclass(slots=True)
class BenchConfig:
    """Everything a run needs; `tollway bench` builds one from its flags."""

    targets: list[Target]
    levels: list[LoadLevel]
    bounds: RunBounds
    workload: Workload
    slo: Slo = field(default_factory=Slo)
    goodput_target: float = 0.95
    timeout_s: float = 120.0
    rate_tolerance: float = 0.05
    extra_body: dict[str, Any] = field(default_factory=dict)
    stop_at_first_miss: bool = False
    keep_records: bool = False  # keep every RequestRecord after summarising (for --raw); costs memory


@dataclass(slots=True)
class TargetResult:
    target: Target
    exact_output: bool
    notes: list[str]
    levels: list[LevelSummary]
    records: dict[str, list[RequestRecord]] = field(default_factory=dict)


@dataclass(slots=True)
class BenchResult:
    config: BenchConfig
    started_at: datetime
    finished_at: datetime
    results: list[TargetResult]
    capacity: CapacityReport


def run_benchmark(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Run the whole benchmark in a fresh event loop (uvloop when installed) and return its results."""
    loop_factory = None
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(run_benchmark_async(config, progress))


async def run_benchmark_async(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    started = datetime.now(timezone.utc)
    exact_by_target = {}
    notes_by_target = {}
    for target in config.targets:
        exact_by_target[target.name], notes_by_target[target.name] = await probe(target, config)
    results = []
    for target in config.targets:
        result = TargetResult(target, exact_by_target[target.name], notes_by_target[target.name], [])
        await _run_target(config, result, progress)
        results.append(result)
    capacity = capacity_report({r.target.name: (r.target.model, r.levels) for r in results}, config.slo,
                               config.goodput_target)
    return BenchResult(config, started, datetime.now(timezone.utc), results, capacity)


async def _run_target(config: BenchConfig, result: TargetResult, progress: Progress | None) -> None:
    for level in sorted(config.levels, key=lambda lv: lv.value):
        if progress:
            progress.level_started(result.target, level, config.bounds)
        run = await run_level(result.target, level, config, result.exact_output,
                              progress.on_record if progress else None)
        summary = summarize_level(result.target.name, run, config.slo, result.exact_output,
                                  config.rate_tolerance, config.workload.seed)
        result.levels.append(summary)
        if config.keep_records:
            result.records[level.label] = run.records
        if progress:
            progress.level_finished(summary)
        if config.stop_at_first_miss and not qualifies(summary, config.goodput_target):
            break


def _session(limit: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                 auto_decompress=True, trace_configs=[request_trace()])


async def run_level(target: Target, level: LoadLevel, config: BenchConfig, exact_output: bool,
                    on_record=None) -> LevelRun:
    """One load level against one target, on a fresh connection pool sized for the level."""
    limit = int(level.value) if level.mode == CONCURRENCY else config.bounds.max_inflight
    async with _session(max(1, limit)) as session:
        client = StreamingClient(session, target.chat_url, target.model, target.api_key(), config.timeout_s,
                                 exact_output, config.extra_body)
        if level.mode == CONCURRENCY:
            return await run_closed(client, config.workload, level, config.bounds, on_record)
        return await run_open(client, config.workload, level, config.bounds, config.workload.seed, on_record)


async def probe(target: Target, config: BenchConfig) -> tuple[bool, list[str]]:
    """Send one small request; return whether to request exact output lengths, and notes for the report."""
    notes: list[str] = []
    wants_exact = target.exact_output is not False
    async with _session(1) as session:
        record = await _probe_once(session, target, config, wants_exact)
        if wants_exact and record.error == CLIENT_ERROR and target.exact_output is None:
            retry = await _probe_once(session, target, config, False)
            if retry.ok:
                notes.append("the server rejected min_tokens/ignore_eos, so output lengths are upper bounds "
                             f"(max_tokens), not exact: {record.error_detail}")
                record, wants_exact = retry, False
    if not record.ok:
        hint = ""
        if record.status in (401, 403):
            hint = (f" (no API key sent: ${target.key_env} is unset)" if target.api_key() is None
                    else f" (the key came from ${target.key_env})")
        raise BenchError(f"target {target.name} ({target.display_url}, model {target.model}) failed the probe "
                         f"request: {record.error}: {record.error_detail}{hint}")
    if record.completion_tokens is None:
        notes.append("the stream carried no usage (stream_options.include_usage ignored): token counts, "
                     "TPOT and token throughput are unavailable")
    return wants_exact, notes


async def _probe_once(session: aiohttp.ClientSession, target: Target, config: BenchConfig,
                      exact: bool) -> RequestRecord:
    client = StreamingClient(session, target.chat_url, target.model, target.api_key(),
                             min(config.timeout_s, 60.0), exact, config.extra_body)
    return await client.send(PROBE_SPEC, measured=False)


def monotonic_reference() -> dict[str, Any]:
    """Which clocks the figures come from (written to the JSON provenance)."""
    info = time.get_clock_info("perf_counter")
    return {"latency_clock": "time.perf_counter_ns", "monotonic": info.monotonic,
            "resolution_s": info.resolution, "implementation": info.implementation,
            "wall_clock": "UTC, datetime.now(timezone.utc)"}

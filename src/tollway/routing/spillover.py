"""Self-hosted first, spill to paid: when a self-hosted backend counts as saturated, and how we know.

Self-hosted capacity is already paid for, so a group that mixes it with paid APIs should fill it first.
Two signals say it is full: this gateway's own requests running on it (`max_in_flight`, exact and
instant), and the backend's own queue and KV-cache gauges (vLLM `vllm:num_requests_waiting`, SGLang
`sglang:num_queue_reqs`, ...), which also count traffic from other gateways and clients. The gauges are
scraped in the background every few seconds, never on the request path; a reading older than three
intervals is ignored rather than trusted.

The in-flight count is only a cap if checking it and counting one more are a single step: between a check
and an increment separated by any await (even the one that starts a task), every concurrent request sees
the same last free slot. `try_acquire` is that step, and every attempt that counts in flight takes its slot
through it (or through `acquire`, when it goes ahead regardless) and gives it back with `release`, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tollway.core.background_task import stop_task
from tollway.providers.dialect import Gauges
from tollway.providers.registry import dialect_named
from tollway.routing.settings import SpilloverSettings
from tollway.routing.table import RoutedDeployment

log = logging.getLogger("tollway.routing.spillover")

STALE_AFTER_INTERVALS = 3
SCRAPE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class BackendLoad:
    waiting: float
    kv_usage: float | None
    at: float  # time.monotonic() of the reading


def saturation(dep: RoutedDeployment, settings: SpilloverSettings, interval_s: float) -> str | None:
    """Why `dep` is saturated now (a few words), or None if it can take more."""
    if not dep.self_hosted:
        return None
    if settings.max_in_flight is not None and dep.in_flight >= settings.max_in_flight:
        return f"{dep.in_flight} in flight >= {settings.max_in_flight}"
    load = dep.backend_load
    if load is None or time.monotonic() - load.at > STALE_AFTER_INTERVALS * interval_s:
        return None
    if settings.waiting_above is not None and load.waiting > settings.waiting_above:
        return f"queue {load.waiting:g} > {settings.waiting_above:g}"
    if settings.kv_cache_above is not None and load.kv_usage is not None and load.kv_usage > settings.kv_cache_above:
        return f"KV cache {load.kv_usage:.0%} > {settings.kv_cache_above:.0%}"
    return None


Saturation = Callable[[RoutedDeployment], "str | None"]  # a group's `saturation` check: why full, or None


def try_acquire(dep: RoutedDeployment, saturated: Saturation | None) -> str | None:
    """Count one more attempt on `dep` unless `saturated` says it is full: None when the slot is taken,
    else why not (nothing taken). Checked and taken in one synchronous step; see the module docstring."""
    if saturated is not None:
        why = saturated(dep)
        if why is not None:
            return why
    dep.in_flight += 1
    return None


def acquire(dep: RoutedDeployment) -> None:
    """Count one more attempt on `dep` without asking: no spillover, or a last resort that goes over the cap."""
    dep.in_flight += 1


def release(dep: RoutedDeployment) -> None:
    """Give back a slot taken by `try_acquire` or `acquire`: exactly once per slot, on every way out."""
    dep.in_flight -= 1


def has_room(deps: list[RoutedDeployment], saturated: Saturation) -> bool:
    """Whether any of `deps` can take another request now (somewhere a saturated deployment can spill to)."""
    for dep in deps:
        if saturated(dep) is None:
            return True
    return False


def parse_load(text: str, gauges: Gauges | str, model: str) -> BackendLoad | None:
    """The waiting count and KV usage for `model` from a Prometheus page; None if the page has neither.

    `gauges` are the dialect's (Dialect.gauges), or a dialect name. Series labelled with model_name count
    only for that model; unlabelled ones (llama.cpp) count whole."""
    if isinstance(gauges, str):
        gauges = _gauges_of(gauges)
    waiting_name, kv_names = gauges.waiting, gauges.kv_usage
    waiting: float | None = None
    kv: float | None = None
    for family in text_string_to_metric_families(text):
        if family.name != waiting_name and family.name not in kv_names:
            continue
        for sample in family.samples:
            labelled = sample.labels.get("model_name")
            if labelled is not None and labelled != model:
                continue
            if family.name == waiting_name:
                waiting = (waiting or 0.0) + sample.value
            else:
                kv = max(kv or 0.0, sample.value)
    if waiting is None and kv is None:
        return None
    return BackendLoad(waiting or 0.0, kv, time.monotonic())


def _gauges_of(dialect: str) -> Gauges:
    gauges = dialect_named(dialect).gauges
    if gauges is None:
        raise ValueError(f"dialect {dialect!r} publishes no queue gauges")
    return gauges


class MetricsScraper:
    """Reads each self-hosted deployment's gauges every `interval_s` into `dep.backend_load`."""

    def __init__(self, deployments: list[RoutedDeployment], interval_s: float) -> None:
        self.deployments = [d for d in deployments if d.dialect.gauges is not None]
        self.interval_s = interval_s
        self._task: asyncio.Task | None = None
        self._warned: set[str] = set()

    def start(self, session: aiohttp.ClientSession) -> None:
        if self.deployments:
            self._task = asyncio.create_task(self._run(session), name="spillover-metrics")

    async def stop(self) -> None:
        await stop_task(self._task)

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            await asyncio.gather(*(self.scrape(session, dep) for dep in self.deployments))
            await asyncio.sleep(self.interval_s)

    async def scrape(self, session: aiohttp.ClientSession, dep: RoutedDeployment) -> None:
        url = dep.metrics_url()
        gauges = dep.dialect.gauges
        assert gauges is not None  # only deployments with gauges are scraped
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S),
                                   headers={k: v for k, v in dep.headers.items() if k == dep.dialect.auth.header}) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                text = await resp.text()
            load = parse_load(text, gauges, dep.upstream_model)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._warn(dep, f"cannot read metrics at {url}: {type(exc).__name__} {exc}")
            return
        if load is None:
            self._warn(dep, f"{url} has no {gauges.waiting} series for model {dep.upstream_model}")
            return
        dep.backend_load = load
        self._warned.discard(dep.name)

    def _warn(self, dep: RoutedDeployment, message: str) -> None:
        """Once per outage, not every few seconds: spillover then relies on in-flight counts alone."""
        if dep.name not in self._warned:
            self._warned.add(dep.name)
            log.warning("spillover for %s: %s; using in-flight counts only", dep.name, message)

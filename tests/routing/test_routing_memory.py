"""Routing keeps no memory per request: 30k requests planned, walked (some failing over) and finished.

What routing learns from traffic (live statistics, breaker windows, in-flight counts, hedge budgets)
must be bounded by a fixed window, never by how many requests passed. The real Router, planner and
walker run in process; the upstream is a coroutine that answers at once or fails as scripted.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from tests.routing.support import config, request
from tollway.accounting.tickets import Key
from tollway.ledger.schema import LedgerRow
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.live_stats import WINDOW
from tollway.routing.router import Router
from tollway.routing.table import RouteTable
from tollway.routing.walk import Walk
from tollway.upstream.calls import UpstreamFailure
from tollway.upstream.http_client import HttpClient

REQUESTS = 30_000  # every window below fills within a few hundred requests
TRACED = 6_000  # each of the last two windows of requests, compared under allocation tracing (it slows every allocation) ...
WARM = 3_000    # ... after as many traced ones, so what they free was allocated under tracing too
BREAKER_WINDOW = 20
GROUPS = {
    "prio": {"deployments": ["cheap-text", "vision-mid"]},
    "fast": {"deployments": ["cheap-text", "vision-mid", "long-big"], "strategy": "fastest"},
    "hedged": {"deployments": ["eu-model", "long-big"], "hedge": {"after_ms": 60_000, "budget_percent": 5}},
}


class Headers:
    headers: dict[str, str] = {}


def _row(n: int, walk: Walk, answered: str) -> LedgerRow:
    return LedgerRow(id=f"req-{n}", ts="2026-11-23T10:00:00+00:00", endpoint="chat", requested_model="g",
                     status="ok", http_status=200, deployment=answered,
                     attempts=[a.to_ledger() for a in walk.attempts], prompt_tokens=20, cached_tokens=4,
                     completion_tokens=30, usage_source="reported", cost_usd="0.00001", latency_ms=3.0, streamed=n % 2)


async def _traffic(router: Router, table: RouteTable, cfg, start: int, count: int) -> None:
    key = Key(id="k1")
    loop = asyncio.get_running_loop()
    names = list(GROUPS)

    async def attempt(dep):
        if dep.name == "cheap-text" and attempt.n % 7 == 0:  # one in seven requests fails over
            raise UpstreamFailure(Failure(FailureKind.SERVER, "upstream 503", 503))
        return "answer"

    for n in range(start, start + count):
        attempt.n = n  # type: ignore[attr-defined]
        group = table.groups[names[n % len(names)]]
        plan = await router.plan(group, request(group.name, f"question {n % 13}"), key, Headers())
        walk = Walk(cfg.retry, loop.time() + 30, plan)
        dep, _ = await walk.run(group.name, plan.deployments, attempt)
        router.finished(walk, _row(n, walk, dep.name))


def _entries(table: RouteTable) -> dict[str, int]:
    deployments = table.deployments.values()
    return {
        "live samples": sum(len(d.stats.ttft) + len(d.stats.replies) for d in deployments),
        "breaker window": sum(len(d.breaker._outcomes) for d in deployments),
        "in flight": sum(d.in_flight for d in deployments),
        "http targets": sum(len(d.http_targets) for d in deployments),
    }


def test_routing_state_stays_bounded_over_30k_requests():
    cfg = config(GROUPS, retry={"max_attempts": 3, "retries_per_deployment": 0, "backoff_base_s": 0,
                                "backoff_max_s": 0},
                 breaker={"consecutive_failures": 50, "window": BREAKER_WINDOW, "error_rate": 0.9})
    table = RouteTable(cfg, None, resolve_secrets=False)
    shadow_rows: list[LedgerRow] = []
    router = Router(table, None, HttpClient(), shadow_rows.append)

    async def main() -> tuple[dict, dict, int]:
        await _traffic(router, table, cfg, 0, REQUESTS // 2)
        halfway = _entries(table)
        await _traffic(router, table, cfg, REQUESTS // 2, REQUESTS // 2 - TRACED - WARM)
        tracemalloc.start()
        try:
            await _traffic(router, table, cfg, REQUESTS - TRACED - WARM, WARM)
            gc.collect()  # cyclic garbage (exceptions and their frames) is not growth
            snapshots = [tracemalloc.take_snapshot()]
            for start in (REQUESTS - TRACED, REQUESTS):  # two windows: a leak grows both, a one-off only one
                await _traffic(router, table, cfg, start, TRACED)
                gc.collect()
                snapshots.append(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()
        grown = min(sum(stat.size_diff for stat in later.compare_to(earlier, "filename"))
                    for earlier, later in zip(snapshots, snapshots[1:]))
        return halfway, _entries(table), grown

    halfway, end, grown = asyncio.run(main())
    assert shadow_rows == [], "no group mirrors requests"
    assert end["in flight"] == 0, "every answered attempt is released when its request finishes"
    assert end["live samples"] <= 2 * WINDOW * len(table.deployments)
    assert end["breaker window"] <= BREAKER_WINDOW * len(table.deployments)
    assert end == halfway, "the second 15k requests added entries: something grows with traffic"
    hedged = table.groups["hedged"].hedge_budget
    assert hedged is not None and hedged.requests == (REQUESTS + TRACED) // 3 and hedged.hedges == 0
    assert grown < 10 * TRACED, f"{TRACED} more requests grew traced memory by {grown} bytes ({grown / TRACED:.1f} per request)"

"""The Router is built from the parts it uses (table, pricer, upstream client, row writer), not from a
gateway: its model classifier and shadow copies call the upstream client it was given, over real sockets,
and a shadow copy's row goes to the writer it was given."""

from __future__ import annotations

import asyncio

from tests.routing.counting_upstream import CountingUpstream
from tests.routing.support import PROVIDERS, config, planner, request, table
from tollway.accounting.tickets import Key
from tollway.ledger.schema import LedgerRow
from tollway.routing.router import Router
from tollway.routing.walk import Walk
from tollway.upstream.http_client import HttpClient


class Headers:
    headers: dict[str, str] = {}


def local_providers(port: int) -> dict:
    return {**PROVIDERS, "local": {**PROVIDERS["local"], "base_url": f"http://127.0.0.1:{port}/v1"}}


def test_the_classifier_and_the_shadow_copy_use_the_router_s_own_parts():
    groups = {"graded": {"deployments": ["cheap-text", "local-vllm"], "strategy": "tiers",
                         "tiers": {"default": ["cheap-text"]},
                         "complexity": {"classifier": "model", "deployment": "local-vllm"}},
              "mirrored": {"deployments": ["cheap-text"], "shadow": {"deployment": "local-vllm", "sample": 1}}}
    rows: list[LedgerRow] = []

    async def main(upstream: CountingUpstream):
        tbl = table(groups, providers=local_providers(upstream.port))
        client = HttpClient()
        router = Router(tbl, planner().pricer, client, rows.append)
        try:
            graded = await router.plan(tbl.groups["graded"], request("graded"), Key(id="k"), Headers())
            mirrored = await router.plan(tbl.groups["mirrored"], request("mirrored"), Key(id="k"), Headers())
            walk = Walk(config({}).retry, asyncio.get_running_loop().time() + 5, mirrored)
            router.finished(walk, LedgerRow(id="r1", ts="2026-12-06T00:00:00+00:00", endpoint="chat",
                                            requested_model="mirrored", status="ok", http_status=200,
                                            route_group="mirrored"))
            await router.stop()
            return graded
        finally:
            await client.close()

    with CountingUpstream(hold_s=0).running() as upstream:
        graded = asyncio.run(main(upstream))
        served = upstream.served
    assert served == 2, "one grading call and one shadow copy reached the upstream"
    assert [r.deployment.name for r in graded.overhead] == ["local-vllm"]  # the grading call, accounted
    assert "local-vllm gave no grade" in graded.reason  # it answered words, not a grade: the heuristic decided
    assert [(r.id, r.deployment, r.status, r.shadow) for r in rows] == [("r1:shadow", "local-vllm", "ok", 1)]


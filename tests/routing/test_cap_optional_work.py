"""Optional work against a capped self-hosted deployment: the model classifier's call and shadow copies.

Both count in their deployment's in-flight count like any attempt, and both take their slot with the
spillover check in one step: many at once put no more than the cap on the deployment (counted at a
loopback server that answers after a pause), the rest fall back (the heuristic grade) or are dropped
(the shadow copy), and the count is back to 0 afterwards.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson
from aiohttp import web

from tests.processes import free_port
from tests.routing.support import request
from tollway.config import Config
from tollway.ledger.schema import LedgerRow
from tollway.routing.features import RequestFeatures
from tollway.routing.model_classifier import model_complexity
from tollway.routing.residency import UNRESTRICTED
from tollway.routing.settings import ComplexitySettings, SpilloverSettings
from tollway.routing.shadow import ShadowCopy, ShadowMirror
from tollway.routing.spillover import saturation
from tollway.routing.table import RouteTable
from tollway.upstream.http_client import HttpClient

CAP = 2
SPILLOVER = SpilloverSettings(max_in_flight=CAP, waiting_above=None, kv_cache_above=None)
PAUSE_S = 0.2


def full(dep):
    return saturation(dep, SPILLOVER, SPILLOVER.scrape_interval_s)


class Server:
    """A loopback vLLM-shaped server that answers after PAUSE_S and counts requests at once."""

    def __init__(self) -> None:
        self.running = self.peak = self.seen = 0
        self.port = free_port()

    async def answer(self, http: web.Request) -> web.Response:
        await http.read()
        self.seen += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(PAUSE_S)
        finally:
            self.running -= 1
        body = {"id": "x", "object": "chat.completion", "model": "local",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "low"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def __aenter__(self) -> "Server":
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


def local_deployment(port: int):
    config = Config.model_validate({
        "providers": {"gpu": {"kind": "vllm", "base_url": f"http://127.0.0.1:{port}/v1", "jurisdiction": "self-hosted"}},
        "deployments": {"local": {"provider": "gpu", "model": "local"}},
        "route_groups": {"g": {"deployments": ["local"]}},
    })
    return RouteTable(config, None, resolve_secrets=False).deployments["local"]


def test_concurrent_classifier_calls_never_exceed_the_cap_and_the_rest_use_the_heuristic():
    settings = ComplexitySettings(classifier="model", deployment="local", timeout_ms=2000)

    async def main():
        async with Server() as server:
            client = HttpClient()
            try:
                dep = local_deployment(server.port)
                features = RequestFeatures(request(content="hello"))
                found = await asyncio.gather(*(model_complexity(client, dep, features, settings, UNRESTRICTED, None, full)
                                               for _ in range(5)))
                return server, found, dep.in_flight
            finally:
                await client.close()

    server, found, in_flight = asyncio.run(main())
    assert (server.seen, server.peak, in_flight) == (CAP, CAP, 0)
    graded = [c for c, record in found if record is not None]
    fallbacks = [c for c, record in found if record is None]
    assert len(graded) == CAP and all(c.source == "model local" for c in graded)
    assert len(fallbacks) == 5 - CAP
    for complexity in fallbacks:
        assert "local saturated (2 in flight >= 2)" in complexity.source


def test_concurrent_shadow_copies_never_exceed_the_cap_and_the_rest_are_dropped():
    rows: list[LedgerRow] = []

    async def main():
        async with Server() as server:
            client = HttpClient()
            try:
                dep = local_deployment(server.port)
                mirror = ShadowMirror(rows.append, None)
                primary = LedgerRow(id="r1", ts=datetime.now(timezone.utc).isoformat(), endpoint="chat",
                                    requested_model="g", status="ok", http_status=200, route_group="g")
                copy = ShadowCopy(dep, request(content="hello"), "chat", max_in_flight=32, saturated=full)
                launched = [mirror.launch(client, copy, primary) for _ in range(5)]
                held = dep.in_flight
                await mirror.stop()
                await asyncio.sleep(0)  # the done callbacks that give the slots back
                return server, launched, held, dep.in_flight, mirror.dropped
            finally:
                await client.close()

    server, launched, held, after, dropped = asyncio.run(main())
    assert launched == [True] * CAP + [False] * (5 - CAP) and dropped == 5 - CAP
    assert held == CAP, "each copy's slot is taken when it is launched, before its task runs"
    assert (server.seen, server.peak, after) == (CAP, CAP, 0)
    assert [(r.shadow, r.status, r.deployment) for r in rows] == [(1, "ok", "local")] * CAP


def test_a_shadow_copy_cancelled_before_it_started_gives_its_slot_back():
    rows: list[LedgerRow] = []

    async def main():
        client = HttpClient()
        try:
            dep = local_deployment(9)
            mirror = ShadowMirror(rows.append, None)
            primary = LedgerRow(id="r2", ts=datetime.now(timezone.utc).isoformat(), endpoint="chat",
                                requested_model="g", status="ok", http_status=200)
            assert mirror.launch(client, ShadowCopy(dep, request(), "chat", saturated=full), primary)
            for task in list(mirror._tasks):
                task.cancel()  # before its first step: the coroutine never runs
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return dep.in_flight
        finally:
            await client.close()

    assert asyncio.run(main()) == 0

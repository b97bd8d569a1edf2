"""Provider refusals as GatewayError: the status a client of tollway sees, and never the provider key."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from tests.batch.native.support import KEY_ENV, deployment
from tollway.batch.native.http import ProviderCalls
from tollway.core.errors import GatewayError

SECRET = "sk-echoed-secret-456"


async def echo_refusal(request: web.Request) -> web.Response:
    """A provider that refuses with the status the path names and echoes the Authorization header."""
    status = int(request.match_info["status"])
    message = f"refused for {request.headers.get('Authorization', '')}"
    return web.json_response({"error": {"message": message, "type": "x"}}, status=status)


def refusal(status: int) -> GatewayError:
    async def main() -> GatewayError:
        app = web.Application()
        app.router.add_get("/v1/refuse/{status}", echo_refusal)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                calls = ProviderCalls(deployment(f"http://127.0.0.1:{port}", "openai", key=True), session)
                calls.deployment.base_url = f"http://127.0.0.1:{port}/v1"
                with pytest.raises(GatewayError) as caught:
                    await calls.json("GET", f"refuse/{status}")
                return caught.value
        finally:
            await runner.cleanup()
    return asyncio.run(main())


@pytest.mark.parametrize("status, seen, code", [(429, 429, "rate_limited"), (401, 503, "upstream_auth"),
                                                (404, 502, "batch_upstream_error")])
def test_refusals_map_to_the_status_a_client_should_see_and_hide_the_key(monkeypatch, status, seen, code) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    error = refusal(status)
    assert (error.status, error.code) == (seen, code)
    assert f"refused a batch call with {status}: refused for Bearer ***" in error.message
    assert SECRET not in error.message and SECRET not in error.body().decode()


def test_a_results_location_off_the_providers_host_is_never_fetched_with_the_key(monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)

    async def main() -> GatewayError:
        async with aiohttp.ClientSession() as session:
            calls = ProviderCalls(deployment("http://127.0.0.1:9", "anthropic", key=True), session)
            with pytest.raises(GatewayError) as caught:
                await calls.download("http://evil.example/v1/messages/batches/x/results")
            return caught.value

    error = asyncio.run(main())
    assert error.status == 502 and "off its provider's host" in error.message

"""Helpers for the native batch client tests: a deployment pointed at the emulator, and a client run."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import aiohttp

from tollway.batch.native import client_for
from tollway.batch.types import BatchLine
from tollway.config import Config
from tollway.routing.table import RouteTable

KEY_ENV = "TOLLWAY_TEST_BATCH_KEY"
PROVIDER_KINDS = {"openai": "openai", "qwen": "qwen", "anthropic": "anthropic"}


def deployment(emulator_url: str, dialect: str, model: str = "upstream-model", headers: dict | None = None,
               key: bool = False) -> Any:
    """The one deployment of a config whose provider is the emulator speaking `dialect`."""
    provider: dict[str, Any] = {"kind": PROVIDER_KINDS.get(dialect, dialect),
                                "base_url": f"{emulator_url}/{dialect}/v1", "headers": headers or {}}
    if key:
        provider["api_key_env"] = KEY_ENV
    config = Config.model_validate({"providers": {"p": provider}, "deployments": {"d": {"provider": "p", "model": model}},
                                    "route_groups": {"g": {"deployments": ["d"]}}})
    return RouteTable(config, None, resolve_secrets=key).deployments["d"]


def chat_lines(count: int, prefix: str = "line", max_tokens: int = 5) -> list[BatchLine]:
    return [BatchLine(i, f"{prefix}-{i}", "/v1/chat/completions", "g",
                      {"model": "g", "messages": [{"role": "user", "content": f"question {i}"}],
                       "max_tokens": max_tokens}) for i in range(count)]


def run(dep: Any, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(client)` with the deployment's native client on a fresh session."""
    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            client = client_for(dep, session)
            assert client is not None
            return await work(client)
    return asyncio.run(main())


async def poll_until_ended(client: Any, submission: Any, limit_s: float = 10.0) -> list[str]:
    """Every distinct state seen, in order, until the batch ends."""
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        state = await client.state(submission)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("completed", "failed", "expired", "cancelled"):
            return seen
        await asyncio.sleep(0.03)
    raise AssertionError(f"the batch did not end in {limit_s}s; states seen: {seen}")

"""The OpenAI Agents SDK running a one-tool agent through `tollway serve` (the Responses API model) to an
emulated DeepSeek upstream: the tool is called, its output goes back, the final answer arrives, and each
model call has its row."""

from __future__ import annotations

import asyncio

import pytest

from tests.gateway.support import PROVIDER_KEYS, emulator_config

agents = pytest.importorskip("agents")
pytestmark = pytest.mark.slow


def test_a_one_tool_agent_runs_through_tollway(emulator_factory, gateway_factory):
    from openai import AsyncOpenAI

    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12}}})
    gw = gateway_factory(emulator_config(emu, group=["ds-flash"]), env=PROVIDER_KEYS)
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return f"18C and sunny in {city}"

    async def run() -> str:
        agents.set_default_openai_client(AsyncOpenAI(base_url=gw.base_url, api_key="client-key", max_retries=0),
                                         use_for_tracing=False)
        agents.set_default_openai_api("responses")
        agents.set_tracing_disabled(True)
        agent = agents.Agent(name="weather", instructions="Use the tool to answer.", tools=[get_weather],
                             model="chat")
        result = await agents.Runner.run(agent, "What is the weather in Paris?")
        return result.final_output

    final = asyncio.run(run())
    assert calls == ["Paris"], "the agent ran its tool with the arguments the model gave"
    assert isinstance(final, str) and final
    rows = gw.rows(wait_for=2)
    assert [(r["endpoint"], r["status"]) for r in rows] == [("responses", "ok")] * 2
    assert all(r["completion_tokens"] > 0 for r in rows)

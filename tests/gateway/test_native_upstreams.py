"""Anthropic Messages, Gemini generateContent and Azure OpenAI upstreams behind the Chat Completions endpoint,
through `tollway serve` and the emulator, with the OpenAI SDK: answers, streams, tool-call round trips,
exact cost against hand-computed Decimals, failover on overload, refusal on a safety block, one row each."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

pytestmark = pytest.mark.slow

KEYS = {"AN_KEY": "sk-ant-test-0001", "GM_KEY": "gm-test-0002", "AZ_KEY": "az-test-0003"}
CLAUDE = "claude-fable-5.1"  # $10 in, $12.50 5-minute write, $20 1-hour write, $0.25 read, $50 out
CLAUDE_RATES = {"in": Decimal("10.00"), "w5m": Decimal("12.50"), "w1h": Decimal("20.00"), "read": Decimal("0.25"),
                "out": Decimal("50.00")}
GEMINI = "gemini-2.5-flash"  # $0.30 in, $0.03 cached, $2.50 out (thoughts included)
GEMINI_RATES = {"in": Decimal("0.30"), "cached": Decimal("0.03"), "out": Decimal("2.50")}
AZURE = "gpt-5.4-mini"  # an Azure deployment named after its model: OpenAI's $0.75 in, $0.075 cached, $4.50 out
AZURE_RATES = {"in": Decimal("0.75"), "cached": Decimal("0.075"), "out": Decimal("4.50")}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]
TIMEOUTS = {"connect_s": 2, "first_byte_s": 3, "between_chunks_s": 2, "response_s": 5}


def config(emu, group: list[str]) -> dict:
    return {
        "retry": {"max_attempts": 4, "retries_per_deployment": 0, "backoff_base_s": 0.01, "backoff_max_s": 0.05},
        "providers": {
            "anthropic": {"kind": "anthropic", "base_url": f"{emu.url}/anthropic/v1", "api_key_env": "AN_KEY",
                          "timeouts": TIMEOUTS},
            "gemini": {"kind": "gemini", "base_url": f"{emu.url}/gemini/v1beta", "api_key_env": "GM_KEY",
                       "timeouts": TIMEOUTS},
            "azure": {"kind": "openai", "dialect": "azure", "base_url": f"{emu.url}/azure", "api_key_env": "AZ_KEY",
                      "api_version": "2024-10-21", "jurisdiction": "eu", "timeouts": TIMEOUTS},
        },
        "deployments": {
            "claude": {"provider": "anthropic", "model": CLAUDE, "max_output": 1024},
            "gem": {"provider": "gemini", "model": GEMINI},
            "az": {"provider": "azure", "model": AZURE},
        },
        "route_groups": {"chat": {"deployments": group}},
    }


def profiles(**extra: dict) -> dict:
    base = {CLAUDE: {"api_key": KEYS["AN_KEY"], "output_tokens": 8},
            GEMINI: {"api_key": KEYS["GM_KEY"], "output_tokens": 8},
            AZURE: {"api_key": KEYS["AZ_KEY"], "output_tokens": 8}}
    for model, profile in extra.items():
        base[model] = {**base[model], **profile}
    return {"models": base}


@pytest.fixture
def serve(emulator_factory, gateway_factory):
    def start(group: list[str], **models: dict):
        emu = emulator_factory(profiles(**{_model(k): v for k, v in models.items()}))
        return emu, gateway_factory(config(emu, group), env=KEYS)
    return start


def _model(short: str) -> str:
    return {"claude": CLAUDE, "gem": GEMINI, "az": AZURE}[short]


def ask(gw, rid: str, **extra):
    body = {"model": "chat", "messages": [{"role": "user", "content": "word " * 200}], **extra}
    return gw.client().chat.completions.with_raw_response.create(**body, extra_headers={"x-request-id": rid})


def collect(stream) -> tuple[str, str, dict, list, object]:
    """(content, reasoning, tool calls by index, finish reasons, final usage) of a streamed answer."""
    content, reasoning, calls, finishes, usage = "", "", {}, [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            content += delta.content or ""
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for call in delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": None, "name": None, "arguments": "", "deltas": 0})
                entry["id"] = call.id or entry["id"]
                if call.function is not None:
                    entry["name"] = call.function.name or entry["name"]
                    if call.function.arguments:
                        entry["arguments"] += call.function.arguments
                        entry["deltas"] += 1
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return content, reasoning, calls, finishes, usage


def claude_cost(usage: dict) -> Decimal:
    """Anthropic's bill: uncached input, cache reads, 5-minute and 1-hour writes, output."""
    split = usage["cache_creation"]
    r = CLAUDE_RATES
    return (usage["input_tokens"] * r["in"] + usage["cache_read_input_tokens"] * r["read"]
            + split["ephemeral_5m_input_tokens"] * r["w5m"] + split["ephemeral_1h_input_tokens"] * r["w1h"]
            + usage["completion_tokens"] * r["out"]) / 1_000_000


CACHED_CLAUDE = {"cache_hit_ratio": 0.5, "cache_write_ratio": 0.3, "cache_write_1h_share": 0.5, "reasoning_tokens": 3}


def test_anthropic_answer_is_translated_and_billed_with_both_cache_writes(serve):
    emu, gw = serve(["claude"], claude=CACHED_CLAUDE)
    raw = ask(gw, "an-1")
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    extra = reply.choices[0].message.model_extra
    assert extra["reasoning_content"] == "think0 think1 think2"
    assert extra["thinking_blocks"][0]["signature"] == "emulator-signature"
    usage = reply.usage.model_dump()
    split = usage["cache_creation"]
    assert usage["cache_read_input_tokens"] > 0 and split["ephemeral_5m_input_tokens"] > 0
    assert split["ephemeral_1h_input_tokens"] > 0
    row = gw.row("an-1")
    assert row["prompt_tokens"] == usage["input_tokens"] + usage["cache_read_input_tokens"] + \
        usage["cache_creation_input_tokens"] == reply.usage.prompt_tokens
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (usage["cache_read_input_tokens"],
                                                                 usage["cache_creation_input_tokens"])
    assert Decimal(row["cost_usd"]) == claude_cost(usage) == Decimal(raw.headers["x-tollway-cost-usd"])
    sent = emu.requests(CLAUDE)[-1]
    assert sent["path"] == "/anthropic/v1/messages"
    assert len(gw.rows()) == 1


def test_anthropic_stream_is_chat_chunks_with_exact_usage(serve):
    emu, gw = serve(["claude"], claude=CACHED_CLAUDE)
    stream = gw.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "word " * 200}],
                                                 stream=True, stream_options={"include_usage": True},
                                                 extra_headers={"x-request-id": "an-2"})
    content, reasoning, calls, finishes, usage = collect(stream)
    assert content and reasoning == "think0 think1 think2" and not calls and finishes == ["stop"]
    usage = usage.model_dump()
    row = gw.row("an-2")
    assert row["status"] == "ok" and row["completion_tokens"] == usage["completion_tokens"]
    assert Decimal(row["cost_usd"]) == claude_cost(usage)
    assert usage["cache_creation"]["ephemeral_1h_input_tokens"] > 0


@pytest.mark.parametrize("short", ["claude", "gem", "az"])
def test_streamed_tool_call_round_trip(serve, short):
    """The model calls the tool (its arguments arrive as deltas), the client answers, the model replies."""
    emu, gw = serve([short])
    client = gw.client()
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    stream = client.chat.completions.create(model="chat", messages=messages, tools=TOOLS, stream=True,
                                            extra_headers={"x-request-id": f"{short}-tool-1"})
    content, _, calls, finishes, _ = collect(stream)
    assert finishes == ["tool_calls"] and list(calls) == [0]
    call = calls[0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    if short == "claude":
        assert call["deltas"] == 3, "Anthropic's input_json_delta pieces arrive as argument deltas"
    messages += [{"role": "assistant", "content": content or None, "tool_calls": [
                     {"id": call["id"], "type": "function",
                      "function": {"name": call["name"], "arguments": call["arguments"]}}]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"}]
    reply = client.chat.completions.create(model="chat", messages=messages, tools=TOOLS,
                                           extra_headers={"x-request-id": f"{short}-tool-2"})
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content
    assert [r["status"] for r in gw.rows(wait_for=2)] == ["ok", "ok"]


def gemini_cost(usage) -> Decimal:
    cached = usage.prompt_tokens_details.cached_tokens
    r = GEMINI_RATES
    return ((usage.prompt_tokens - cached) * r["in"] + cached * r["cached"] + usage.completion_tokens * r["out"]) \
        / 1_000_000


GEMINI_PROFILE = {"cache_hit_ratio": 0.5, "reasoning_tokens": 4, "output_tokens": 6}


def test_gemini_answer_and_stream_bill_thoughts_and_cached_tokens(serve):
    emu, gw = serve(["gem"], gem=GEMINI_PROFILE)
    reply = ask(gw, "gm-1", reasoning_effort="low").parse()
    usage = reply.usage
    assert usage.completion_tokens_details.reasoning_tokens == 4 and usage.completion_tokens == 10
    assert usage.prompt_tokens_details.cached_tokens > 0
    assert reply.choices[0].message.model_extra["reasoning_content"] == "think0 think1 think2 think3"
    row = gw.row("gm-1")
    assert (row["reasoning_tokens"], row["cached_tokens"]) == (4, usage.prompt_tokens_details.cached_tokens)
    assert Decimal(row["cost_usd"]) == gemini_cost(usage)
    sent = emu.requests(GEMINI)[-1]
    assert sent["path"] == f"/gemini/v1beta/models/{GEMINI}:generateContent"
    stream = gw.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "word " * 200}],
                                                 stream=True, stream_options={"include_usage": True},
                                                 extra_headers={"x-request-id": "gm-2"})
    content, reasoning, _, finishes, usage = collect(stream)
    assert content and reasoning == "think0 think1 think2 think3" and finishes == ["stop"]
    assert Decimal(gw.row("gm-2")["cost_usd"]) == gemini_cost(usage)
    assert emu.requests(GEMINI)[-1]["path"] == f"/gemini/v1beta/models/{GEMINI}:streamGenerateContent"


def test_a_gemini_safety_block_moves_to_another_provider_and_alone_is_a_refusal(serve):
    emu, gw = serve(["gem", "az"], gem={"faults": [{"kind": "content_filter"}]})
    raw = ask(gw, "gm-3")
    assert raw.headers["x-tollway-deployment"] == "az"
    row = gw.row("gm-3")
    assert [a["kind"] for a in row["attempts"]][0] == "content_filter"
    emu2, gw2 = serve(["gem"], gem={"faults": [{"kind": "content_filter"}]})
    with pytest.raises(openai.APIStatusError) as refused:
        ask(gw2, "gm-4")
    error = refused.value.body
    assert refused.value.status_code == 400 and "safety" in error["message"]
    assert gw2.row("gm-4")["status"] == "error"


def test_anthropic_overloaded_fails_over_before_the_client_sees_a_byte(serve):
    emu, gw = serve(["claude", "gem"], claude={"faults": [{"kind": "overloaded"}]})
    stream = gw.client().chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], stream=True,
        extra_headers={"x-request-id": "an-3"})
    assert stream.headers["x-tollway-deployment"] == "gem"
    content, *_ = collect(stream.parse())
    assert content
    row = gw.row("an-3")
    assert row["attempts"][0]["kind"] == "server_error" and row["deployment"] == "gem"
    assert len(gw.rows()) == 1


def test_azure_deployment_url_key_and_openai_prices(serve):
    emu, gw = serve(["az"], az={"cache_hit_ratio": 0.5})
    raw = ask(gw, "az-1")
    usage = raw.parse().usage
    cached = usage.prompt_tokens_details.cached_tokens
    expected = ((usage.prompt_tokens - cached) * AZURE_RATES["in"] + cached * AZURE_RATES["cached"]
                + usage.completion_tokens * AZURE_RATES["out"]) / 1_000_000
    assert Decimal(gw.row("az-1")["cost_usd"]) == expected
    sent = emu.requests(AZURE)[-1]
    assert sent["path"] == f"/azure/openai/deployments/{AZURE}/chat/completions"
    content, *_ = collect(gw.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                                              stream=True))
    assert content


def test_azure_content_filter_is_a_refusal(serve):
    emu, gw = serve(["az", "claude"], az={"faults": [{"kind": "content_filter"}]})
    raw = ask(gw, "az-2")
    assert raw.headers["x-tollway-deployment"] == "claude"
    assert gw.row("az-2")["attempts"][0]["kind"] == "content_filter"


def test_a_field_anthropic_cannot_carry_is_a_400_naming_it(serve):
    emu, gw = serve(["claude"])
    with pytest.raises(openai.BadRequestError) as refused:
        ask(gw, "an-4", logprobs=True)
    assert "'logprobs' cannot be sent to an Anthropic Messages upstream" in refused.value.body["message"]
    assert gw.row("an-4")["status"] == "client_error"
    assert emu.requests(CLAUDE) == []


def test_a_clients_anthropic_beta_header_reaches_the_anthropic_upstream(serve):
    emu, gw = serve(["claude"])
    raw = gw.client().chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "beta-1", "anthropic-beta": "context-1m-2025-08-07", "x-tollway-probe": "kept-home"})
    assert raw.http_response.status_code == 200
    [seen] = emu.requests(CLAUDE)
    assert seen["headers"]["anthropic-beta"] == "context-1m-2025-08-07"
    assert "x-tollway-probe" not in seen["headers"], "only the headers the dialect forwards (the emulator logs x-tollway-*)"
    assert gw.row("beta-1")["status"] == "ok"

"""The gateway serves real requests from the official openai SDK through the emulator, and meters them."""

from datetime import datetime
from decimal import Decimal

import httpx
import orjson
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tollway.catalog import Catalog
from tollway.catalog.cost import cost_usd
from tollway.core.usage import Usage

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12, "cache_hit_ratio": 0.5},
                                       "qwen3.5-plus": {"output_tokens": 7}}})
    gw = gateway_factory(emulator_config(emu), env=PROVIDER_KEYS)
    return emu, gw


def expected_cost(row: dict) -> Decimal:
    # provider names in emulator_config are the provider kinds
    price = Catalog.load().price(row["provider"], row["upstream_model"], datetime.fromisoformat(row["ts"]),
                                 row["prompt_tokens"])
    usage = Usage(row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"], row["completion_tokens"],
                  row["reasoning_tokens"])
    return cost_usd(usage, price)


def test_non_streamed_chat_is_served_metered_and_priced(setup):
    emu, gw = setup
    raw = gw.client().chat.completions.with_raw_response.create(**chat(), extra_headers={"x-request-id": "req-1"})
    reply = raw.parse()
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens == 12
    assert raw.headers["x-request-id"] == "req-1"
    assert raw.headers["x-tollway-deployment"] == "ds-flash"
    assert raw.headers["x-tollway-attempts"] == "1"
    row = gw.row("req-1")
    assert row["status"] == "ok" and row["http_status"] == 200 and row["streamed"] == 0
    assert (row["provider"], row["upstream_model"], row["jurisdiction"]) == ("deepseek", "deepseek-flash", "cn")
    assert row["completion_tokens"] == 12 and row["usage_source"] == "reported"
    assert row["prompt_tokens"] == reply.usage.prompt_tokens
    assert row["cached_tokens"] == reply.usage.model_extra["prompt_cache_hit_tokens"] > 0
    assert Decimal(row["cost_usd"]) == expected_cost(row) > 0
    assert raw.headers["x-tollway-cost-usd"] == row["cost_usd"]
    assert row["attempts"][0]["outcome"] == "ok"
    assert row["system_fingerprint"] == reply.system_fingerprint != ""
    assert orjson.loads(row["request_features"])["needs"] == []
    upstream = emu.requests("deepseek-flash")[-1]
    assert upstream["body"]["model"] == "deepseek-flash", "the upstream gets its own model name"


def test_stream_without_include_usage_hides_usage_chunk_but_meters_it(setup):
    _, gw = setup
    stream = gw.client().chat.completions.with_raw_response.create(**chat(), stream=True,
                                                                    extra_headers={"x-request-id": "s-1"})
    chunks = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert all(c.usage is None or c.choices for c in chunks), "no usage-only chunk the client did not ask for"
    row = gw.row("s-1")
    assert row["streamed"] == 1 and row["status"] == "ok"
    assert row["completion_tokens"] == 12 and row["usage_source"] == "reported"
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_stream_with_include_usage_on_qwen_keeps_final_usage_chunk(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"qwen3.5-plus": {"output_tokens": 5}}})
    gw = gateway_factory(emulator_config(emu, group=["qwen-plus"]), env=PROVIDER_KEYS)
    chunks = list(gw.client().chat.completions.create(**chat(), stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    without = list(gw.client().chat.completions.create(**chat(), stream=True))
    assert all(c.choices for c in without), "qwen's usage-only chunk is stripped when not asked for"
    rows = gw.rows(wait_for=2)
    assert [r["completion_tokens"] for r in rows] == [5, 5]
    assert emu.requests("qwen3.5-plus")[-1]["body"]["stream_options"] == {"include_usage": True}


def test_tools_images_and_response_format_pass_through(setup):
    emu, gw = setup
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    content = [{"type": "text", "text": "what is in it"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    gw.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": content}], tools=tools,
                                        response_format={"type": "json_object"})
    raw = gw.client().chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": content}], tools=tools, max_tokens=9,
        response_format={"type": "json_object"}, stream=True)
    list(raw.parse())
    body = emu.requests("deepseek-flash")[-1]["body"]
    assert body["tools"] == tools and body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["content"] == content
    row = gw.row(raw.headers["x-request-id"])
    features = orjson.loads(row["request_features"])
    assert features["needs"] == ["json", "tools", "vision"] and features["max_tokens"] == 9
    assert row["system_fingerprint"], "taken from the stream's usage chunk"


def test_completions_embeddings_models_and_health(setup):
    _, gw = setup
    client = gw.client()
    completion = client.completions.create(model="gpt-4o-mini", prompt="Once upon a time", max_tokens=4)
    assert completion.choices[0].text and completion.usage.completion_tokens == 4
    embedding = client.embeddings.create(model="chat", input=["a", "b"])
    assert len(embedding.data) == 2 and embedding.usage.prompt_tokens > 0
    assert {m.id for m in client.models.list()} == {"chat", "gpt-4o-mini"}
    assert httpx.get(f"{gw.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{gw.url}/readyz").status_code == 200
    rows = gw.rows(wait_for=2)
    assert sorted(r["endpoint"] for r in rows) == ["completions", "embeddings"]

"""End to end through a real model: the gateway in front of llama.cpp's llama-server with SmolLM2-135M."""

import httpx
import pytest

from tests.processes import TOLLWAY, free_port, running, wait_http
from tollway.selfhost.local_cache import cache_root

pytestmark = [pytest.mark.slow, pytest.mark.llama]


def local_config(base_url: str) -> dict:
    return {
        "providers": {"local": {"kind": "llamacpp", "base_url": base_url, "jurisdiction": "self-hosted",
                                "timeouts": {"first_byte_s": 120, "response_s": 240}}},
        "deployments": {"smollm2": {"provider": "local", "model": "smollm2-135m", "context_window": 2048}},
        "route_groups": {"local": {"deployments": ["smollm2"]}},
    }


def test_non_streamed_and_streamed_chat_through_llama_server(llama_server, gateway_factory):
    gw = gateway_factory(local_config(llama_server.base_url))
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(
        model="local", messages=[{"role": "user", "content": "Name a colour."}], max_tokens=8)
    reply = raw.parse()
    assert reply.choices[0].message.content
    assert 0 < reply.usage.completion_tokens <= 8
    assert raw.headers["x-tollway-deployment"] == "smollm2"
    assert raw.headers["x-tollway-cost-usd"] == "0", "a self-hosted model has no token price"

    stream = client.chat.completions.with_raw_response.create(
        model="local", messages=[{"role": "user", "content": "Count to three."}], max_tokens=8, stream=True)
    chunks = list(stream.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(c.choices for c in chunks), "the usage chunk the client did not ask for is removed"

    first, second = gw.row(raw.headers["x-request-id"]), gw.row(stream.headers["x-request-id"])
    assert first["usage_source"] == "reported" and first["completion_tokens"] == reply.usage.completion_tokens
    assert second["usage_source"] == "reported", "llama-server reports usage on streams; tollway asked for it"
    assert 0 < second["completion_tokens"] <= 8 and second["prompt_tokens"] > 0
    assert second["jurisdiction"] == "self-hosted" and second["status"] == "ok"


def test_zero_config_serve_launches_the_local_model(tmp_path, llama_server):
    """What scripts/quickstart runs: `tollway serve` with no config starts llama-server itself."""
    port = free_port()
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "TOLLWAY_CONFIG": ""}
    env["TOLLWAY_CACHE_DIR"] = str(cache_root())  # HOME moves; the built binary and model stay where they are
    with running([*TOLLWAY, "serve", "--port", str(port)], f"http://127.0.0.1:{port}/healthz",
                 tmp_path / "serve.log", env=env, cwd=tmp_path):
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120,
                           json={"model": "local", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] > 0
    assert (tmp_path / "data" / "tollway" / "ledger.db").exists(), "the ledger went to the user data dir"

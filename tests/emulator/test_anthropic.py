"""The Anthropic Messages dialect: message shape, usage semantics, SSE event sequence, errors, headers."""

from __future__ import annotations

import pytest

from tests.emulator.support import post, stream
from tollway.emulator.tokens import output_text


def _body(**extra) -> dict:
    return {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hello there"}], **extra}


def _url(emulator) -> str:
    return f"{emulator.url}/anthropic/v1/messages"


def test_message_shape_and_usage_excluding_cache(emulator) -> None:
    emulator.set_profile("claude-x", {"cache_hit_ratio": 0.5, "cache_write_ratio": 0.25, "output_tokens": 3})
    reply = post(_url(emulator), _body(system="be brief"))  # 7 + (2 + 4) = 13 prompt tokens
    assert reply.status == 200
    body = reply.body
    assert body["type"] == "message" and body["role"] == "assistant" and body["id"].startswith("msg_")
    assert body["content"] == [{"type": "text", "text": output_text(3)}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    # 13 prompt tokens: 6 read from cache, 3 written, 4 plain; input_tokens excludes both cache kinds
    assert body["usage"] == {"input_tokens": 4, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 6,
                             "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 0},
                             "output_tokens": 3, "service_tier": "standard"}


def test_thinking_block_and_max_tokens_stop(emulator) -> None:
    emulator.set_profile("claude-x", {"reasoning_tokens": 2})
    body = post(_url(emulator), _body(max_tokens=5)).body
    assert body["content"][0] == {"type": "thinking", "thinking": "think0 think1", "signature": "emulator-signature"}
    assert body["content"][1] == {"type": "text", "text": output_text(3)}
    assert body["stop_reason"] == "max_tokens" and body["usage"]["output_tokens"] == 5


def test_stream_event_sequence_and_cumulative_usage(emulator) -> None:
    emulator.set_profile("claude-x", {"reasoning_tokens": 2, "output_tokens": 3, "cache_hit_ratio": 0.5})
    result = stream(_url(emulator), _body())
    names = [name for name, _ in result.events]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop", "message_delta",
                     "message_stop"]
    assert all(data["type"] == name for name, data in result.events)
    assert "[DONE]" not in result.data
    start = result.events[0][1]["message"]
    assert start["usage"]["input_tokens"] == 4 and start["usage"]["cache_read_input_tokens"] == 3
    deltas = [data["delta"] for name, data in result.events if name == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "think0 think1"
    assert deltas[2] == {"type": "signature_delta", "signature": "emulator-signature"}
    assert "".join(d.get("text", "") for d in deltas) == output_text(3)
    message_delta = result.events[-2][1]
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert message_delta["usage"]["output_tokens"] == 5  # cumulative: 2 thinking + 3 text


def test_text_only_stream_has_one_block(emulator) -> None:
    result = stream(_url(emulator), _body(max_tokens=2))
    blocks = [data for name, data in result.events if name == "content_block_start"]
    assert blocks == [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    assert result.events[-2][1]["usage"]["output_tokens"] == 2
    assert result.events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_unprefixed_v1_messages_is_anthropic(emulator) -> None:
    assert post(f"{emulator.url}/v1/messages", _body()).body["type"] == "message"


@pytest.mark.parametrize("kind, status, error_type", [
    ("overloaded", 529, "overloaded_error"), ("insufficient_balance", 402, "billing_error"),
    ("rate_limit", 429, "rate_limit_error"), ("server_error", 500, "api_error")])
def test_error_envelope(emulator, kind: str, status: int, error_type: str) -> None:
    emulator.set_profile("claude-x", {"faults": [{"kind": kind}]})
    reply = post(_url(emulator), _body())
    assert reply.status == status
    assert reply.body["type"] == "error" and reply.body["error"]["type"] == error_type
    assert reply.body["request_id"].startswith("req_")
    if kind == "overloaded":
        assert reply.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_rate_limit_headers_and_retry_after(emulator) -> None:
    ok = post(_url(emulator), _body())
    assert "anthropic-ratelimit-requests-remaining" in ok.headers and "request-id" in ok.headers
    emulator.set_profile("claude-x", {"faults": [{"kind": "rate_limit", "retry_after_s": 7}]})
    limited = post(_url(emulator), _body())
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_x_api_key_auth(emulator) -> None:
    emulator.set_profile("claude-x", {"api_key": "sk-ant-right"})
    wrong = post(_url(emulator), _body(), {"x-api-key": "sk-ant-wrong"})
    assert wrong.status == 401 and wrong.body["error"]["type"] == "authentication_error"
    assert post(_url(emulator), _body(), {"x-api-key": "sk-ant-right"}).status == 200


def test_context_errors(emulator) -> None:
    emulator.set_profile("claude-x", {"context_window": 20})
    over = post(_url(emulator), _body(max_tokens=16))
    assert over.status == 400 and over.body["error"]["message"] == (
        "input length and `max_tokens` exceed context limit: 7 + 16 > 20, decrease input length or `max_tokens` "
        "and try again")
    emulator.set_profile("claude-x", {"context_window": 5})
    too_long = post(_url(emulator), _body())
    assert too_long.body["error"]["message"] == "prompt is too long: 7 tokens > 5 maximum"


def test_max_tokens_is_required(emulator) -> None:
    reply = post(_url(emulator), {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]})
    assert reply.status == 400 and reply.body["error"] == {"type": "invalid_request_error",
                                                           "message": "max_tokens: Field required"}


def test_refusal_and_cut(emulator) -> None:
    emulator.set_profile("claude-x", {"faults": [{"kind": "content_filter", "after_tokens": 1}]})
    refused = post(_url(emulator), _body())
    assert refused.body["stop_reason"] == "refusal" and refused.body["usage"]["output_tokens"] == 1
    emulator.set_profile("claude-x", {"faults": [{"kind": "cut_stream", "after_tokens": 2}]})
    cut = stream(_url(emulator), _body())
    assert not cut.complete and "message_stop" not in [name for name, _ in cut.events]

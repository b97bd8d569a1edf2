"""Faults that shape the answer instead of replacing it: hang, cut_stream, stall, content_filter, context length."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from tests.emulator.support import chat_body, post, stream
from tollway.emulator.tokens import output_text


def _fault(emulator, model: str = "m", **fault) -> None:
    emulator.set_profile(model, {"faults": [fault]})


def _chat_url(emulator, dialect: str) -> str:
    return f"{emulator.base_url(dialect)}/chat/completions"


@pytest.mark.parametrize("dialect", ["openai", "deepseek", "kimi"])
def test_cut_stream_drops_the_connection_after_n_tokens(emulator, dialect: str) -> None:
    _fault(emulator, kind="cut_stream", after_tokens=3)
    result = stream(_chat_url(emulator, dialect), chat_body(stream_options={"include_usage": True}))
    assert not result.complete
    assert "[DONE]" not in result.data
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in result.chunks)
    assert text == output_text(3)
    assert all(c["choices"][0]["finish_reason"] is None for c in result.chunks)
    assert not any(c.get("usage") or c["choices"][0].get("usage") for c in result.chunks)
    assert emulator.stats()["m"]["by_status"] == {"200": 1}


def test_cut_after_zero_tokens_sends_headers_and_no_chunk(emulator) -> None:
    _fault(emulator, kind="cut_stream", after_tokens=0)
    result = stream(_chat_url(emulator, "vllm"), chat_body())
    assert result.status == 200 and not result.complete and result.events == []


def test_cut_stream_raises_in_the_sdk_and_non_stream_gets_no_answer(emulator) -> None:
    _fault(emulator, kind="cut_stream", after_tokens=2)
    sdk = openai.OpenAI(base_url=emulator.base_url("openai"), api_key="k", max_retries=0)
    with pytest.raises(openai.APIError):
        for _ in sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
            pass
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_stall_pauses_between_chunks_after_n_tokens(emulator) -> None:
    _fault(emulator, kind="stall", after_tokens=2, stall_s=0.4)
    times: list[float] = []
    sdk = openai.OpenAI(base_url=emulator.base_url("vllm"), api_key="k", max_retries=0)
    start = time.monotonic()
    text = ""
    for chunk in sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True,
                                             max_tokens=4):
        if chunk.choices and chunk.choices[0].delta.content:
            times.append(time.monotonic() - start)
            text += chunk.choices[0].delta.content
    assert text == output_text(4)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[1] >= 0.38  # the pause sits between token 2 and token 3
    assert gaps[0] < 0.2 and gaps[2] < 0.2


def test_hang_with_hang_s_answers_late(emulator) -> None:
    _fault(emulator, kind="hang", hang_s=0.3)
    start = time.monotonic()
    reply = post(_chat_url(emulator, "openai"), chat_body(max_tokens=2))
    assert time.monotonic() - start >= 0.29
    assert reply.status == 200 and reply.body["choices"][0]["message"]["content"] == output_text(2)


def test_hang_never_answers_and_is_released_when_the_client_leaves(emulator) -> None:
    _fault(emulator, kind="hang")
    sdk = openai.OpenAI(base_url=emulator.base_url("openai"), api_key="k", max_retries=0, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    deadline = time.monotonic() + 5
    while emulator.stats()["m"]["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = emulator.stats()["m"]
    assert stats == {"requests": 1, "by_status": {}, "in_flight": 0}


def test_hung_request_counts_in_flight_while_it_hangs(emulator) -> None:
    _fault(emulator, kind="hang", hang_s=0.6)
    thread = threading.Thread(target=post, args=(_chat_url(emulator, "openai"), chat_body()))
    thread.start()
    time.sleep(0.25)
    assert emulator.stats()["m"]["in_flight"] == 1
    thread.join()
    assert emulator.stats()["m"]["in_flight"] == 0


@pytest.mark.parametrize("dialect", ["openai", "vllm"])
def test_content_filter_as_finish_reason(emulator, dialect: str) -> None:
    _fault(emulator, kind="content_filter", after_tokens=2)
    reply = post(_chat_url(emulator, dialect), chat_body())
    assert reply.status == 200
    assert reply.body["choices"][0]["finish_reason"] == "content_filter"
    assert reply.body["choices"][0]["message"]["content"] == output_text(2)
    assert reply.body["usage"]["completion_tokens"] == 2
    streamed = stream(_chat_url(emulator, dialect), chat_body(stream_options={"include_usage": True}))
    finish = [c for c in streamed.chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish[0]["choices"][0]["finish_reason"] == "content_filter"
    assert streamed.chunks[-1]["usage"]["completion_tokens"] == 2


# prompt "hello there" = 7 tokens; window 20; max_tokens 16 -> 23 > 20
CONTEXT_ERRORS = {
    "openai": (400, lambda b: b["error"]["code"] == "context_length_exceeded" and b["error"]["message"] ==
               "This model's maximum context length is 20 tokens. However, you requested 23 tokens (7 in the "
               "messages, 16 in the completion). Please reduce the length of the messages or completion."),
    "deepseek": (400, lambda b: b["error"]["code"] == "invalid_request_error" and
                 "maximum context length is 20 tokens" in b["error"]["message"]),
    "qwen": (400, lambda b: b["error"]["message"] ==
             "<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 20]"),
    "kimi": (400, lambda b: b["error"] == {"type": "invalid_request_error",
                                           "message": "Your request exceeded model token limit : 20"}),
    "glm": (400, lambda b: b["error"]["code"] == "1261"),
    "vllm": (400, lambda b: b["error"] == {
        "message": "You passed 7 input tokens and requested 16 output tokens. However, the model's context length "
                   "is only 20 tokens, resulting in a maximum input length of 4 tokens. Please reduce the length of "
                   "the input prompt. (parameter=input_tokens, value=7)",
        "type": "BadRequestError", "param": "input_tokens", "code": 400}),
    "sglang": (400, lambda b: b["object"] == "error" and b["message"].startswith(
        "Requested token count exceeds the model's maximum context length of 20 tokens. You requested a total of "
        "23 tokens: 7 tokens from the input messages and 16 tokens for the completion.")),
}


@pytest.mark.parametrize("dialect", sorted(CONTEXT_ERRORS))
def test_context_window_refusal(emulator, dialect: str) -> None:
    emulator.set_profile("m", {"context_window": 20})
    reply = post(_chat_url(emulator, dialect), chat_body(max_tokens=16))
    status, check = CONTEXT_ERRORS[dialect]
    assert reply.status == status and check(reply.body), reply.body
    assert post(_chat_url(emulator, dialect), chat_body(max_tokens=13)).status == 200  # 7 + 13 = 20 fits


def test_prompt_only_refusals_and_clipping_of_lmdeploy_and_llamacpp(emulator) -> None:
    emulator.set_profile("m", {"context_window": 10})
    for dialect in ("lmdeploy", "llamacpp"):
        clipped = post(_chat_url(emulator, dialect), chat_body(max_tokens=16))
        assert clipped.status == 200 and clipped.body["usage"]["completion_tokens"] == 3
        assert clipped.body["choices"][0]["finish_reason"] == "length"
    long_prompt = chat_body(content="x" * 60)  # 15 + 4 = 19 tokens > 10
    lmdeploy = post(_chat_url(emulator, "lmdeploy"), long_prompt)
    assert lmdeploy.status == 400 and lmdeploy.body["message"] == \
        "Input length (19) must be smaller than the model context length (10)."
    llamacpp = post(_chat_url(emulator, "llamacpp"), long_prompt)
    assert llamacpp.status == 400 and llamacpp.body["error"] == {
        "code": 400, "message": "request (19 tokens) exceeds the available context size (10 tokens), try increasing it",
        "type": "exceed_context_size_error", "n_prompt_tokens": 19, "n_ctx": 10}


def test_ollama_truncates_instead_of_refusing(emulator) -> None:
    emulator.set_profile("m", {"context_window": 5})
    reply = post(_chat_url(emulator, "ollama"), chat_body(max_tokens=3))
    assert reply.status == 200 and reply.body["usage"]["prompt_tokens"] == 5


def test_kimi_prompt_alone_too_long(emulator) -> None:
    emulator.set_profile("m", {"context_window": 5})
    reply = post(_chat_url(emulator, "kimi"), chat_body())
    assert reply.body["error"]["message"] == "Input token length too long"


def test_forced_context_length_fault_is_self_consistent(emulator) -> None:
    _fault(emulator, kind="context_length")
    reply = post(_chat_url(emulator, "openai"), chat_body(max_tokens=10))
    assert reply.status == 400 and reply.body["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 16 tokens. However, you requested 17 tokens" in reply.body["error"]["message"]

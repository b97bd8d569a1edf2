"""The real llama-server serving SmolLM2-135M, spoken to through the official openai SDK.

These pin down the dialect facts tollway's accounting depends on for this pinned build: usage on
non-streamed answers, usage on streams only with stream_options.include_usage, the extra `timings`
object, the error body for an over-long prompt, and the slot layout set by start_llama_server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from tollway.selfhost import build
from tollway.selfhost.llamacpp import (
    MODEL_ALIAS,
    LlamaServer,
    LlamaServerError,
    ensure_llama_server,
    start_llama_server,
)

pytestmark = [pytest.mark.llama, pytest.mark.slow, pytest.mark.timeout(900)]  # 900 s: a cold cache builds first

MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture()
def client(llama_server: LlamaServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=llama_server.base_url, api_key="unused", max_retries=0, timeout=60)


def test_chat_completion_returns_text_and_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL_ALIAS, messages=MESSAGES, max_tokens=16, temperature=0)
    assert completion.model == MODEL_ALIAS
    assert completion.choices[0].message.content.strip()
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    timings = completion.model_extra["timings"]  # llama.cpp extension: prompt_n + cache_n == prompt tokens
    assert timings["predicted_n"] == usage.completion_tokens
    assert timings["prompt_n"] + timings["cache_n"] == usage.prompt_tokens


def test_answers_as_the_alias_and_reports_cached_prefix(client: openai.OpenAI) -> None:
    """Any requested model name is served by the one model, and a repeated prompt is counted as cached."""
    messages = [{"role": "user", "content": "Repeat after me: the toll is paid in tokens."}]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=4, temperature=0)
    again = client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=4, temperature=0)
    assert first.model == again.model == MODEL_ALIAS
    assert again.usage.prompt_tokens == first.usage.prompt_tokens
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached < again.usage.prompt_tokens  # prompt_tokens includes the cached ones
    assert again.model_extra["timings"]["cache_n"] == cached


def test_stream_with_include_usage_ends_with_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL_ALIAS, messages=MESSAGES, max_tokens=16, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and 0 < last.usage.completion_tokens <= 16
    assert all(c.usage is None for c in chunks[:-1])
    assert last.model_extra["timings"]["predicted_n"] == last.usage.completion_tokens


def test_stream_without_include_usage_has_no_usage(client: openai.OpenAI) -> None:
    """This build sends usage on streams only when asked: a gateway must add include_usage itself."""
    stream = client.chat.completions.create(model=MODEL_ALIAS, messages=MESSAGES, max_tokens=8, temperature=0,
                                            stream=True)
    chunks = list(stream)
    assert chunks and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}


def test_over_long_prompt_gets_exceed_context_error(llama_server: LlamaServer) -> None:
    body = {"model": MODEL_ALIAS, "max_tokens": 4,
            "messages": [{"role": "user", "content": "word " * 3000}]}  # > 2048 tokens per slot
    request = urllib.request.Request(f"{llama_server.base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=60)
    assert failure.value.code == 400
    error = json.loads(failure.value.read())["error"]
    assert error["type"] == "exceed_context_size_error" and error["code"] == 400
    assert error["n_ctx"] == 2048 and error["n_prompt_tokens"] > 2048


def test_four_slots_serve_concurrent_requests(client: openai.OpenAI, llama_server: LlamaServer) -> None:
    with urllib.request.urlopen(f"{llama_server.root_url}/slots", timeout=10) as response:
        slots = json.loads(response.read())
    assert len(slots) == 4 and {slot["n_ctx"] for slot in slots} == {2048}

    def ask(n: int) -> int:
        completion = client.chat.completions.create(
            model=MODEL_ALIAS, max_tokens=8, temperature=0,
            messages=[{"role": "user", "content": f"Count to {n}."}])
        return completion.usage.completion_tokens

    with ThreadPoolExecutor(4) as pool:
        produced = list(pool.map(ask, range(4)))
    assert all(0 < tokens <= 8 for tokens in produced)


def test_metrics_endpoint_is_enabled(client: openai.OpenAI, llama_server: LlamaServer) -> None:
    client.chat.completions.create(model=MODEL_ALIAS, messages=MESSAGES, max_tokens=4)
    with urllib.request.urlopen(f"{llama_server.root_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "llamacpp:prompt_tokens_total" in text and "llamacpp:tokens_predicted_total" in text


def test_second_ensure_is_a_cache_hit(llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = ensure_llama_server()
    before = os.stat(binary)

    def must_not_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("ensure_llama_server started a build although the binary is cached")

    monkeypatch.setattr(build, "build_from_sdist", must_not_build)
    monkeypatch.setattr(build, "check_toolchain", must_not_build)
    messages: list[str] = []
    assert ensure_llama_server(messages.append) == binary
    after = os.stat(binary)
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert messages == []


def test_bad_flag_fails_start_with_the_server_log(llama_server: LlamaServer, tmp_path: Path) -> None:
    with pytest.raises(LlamaServerError, match="exited with code") as failure:
        start_llama_server(extra_args=["--no-such-flag-for-tollway"], log_path=tmp_path / "bad.log")
    assert "--no-such-flag-for-tollway" in str(failure.value)


def test_server_dies_with_the_process_that_started_it(llama_server: LlamaServer, tmp_path: Path) -> None:
    """A test run killed with SIGKILL must not leave llama-server running (die_with_parent)."""
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from tollway.selfhost.llamacpp import start_llama_server; "
                               "s = start_llama_server(parallel=1, ctx_size=512, log_path=Path(sys.argv[1])); "
                               "print(s.port, flush=True); time.sleep(600)", str(tmp_path / "orphan.log")],
        stdout=subprocess.PIPE, text=True)
    try:
        port = int(starter.stdout.readline())
        assert _listening(port)
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 30
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(port), "llama-server outlived the process that started it"
    finally:
        starter.kill()
        starter.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0

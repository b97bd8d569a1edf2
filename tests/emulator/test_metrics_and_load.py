"""Self-hosted /metrics: real metric names, live running/waiting counts, queue_waiting, max_running queueing."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.emulator.support import chat_body, post


def _value(text: str, name: str, model: str | None = None) -> float:
    label = f'model_name="{model}"' if model else ""
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#") and label in line:
            if re.match(re.escape(name) + r"[{ ]", line):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {label} not in metrics:\n{text}")


@pytest.mark.parametrize("dialect, running, waiting, kv", [
    ("vllm", "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"),
    ("sglang", "sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage"),
    ("lmdeploy", "lmdeploy:num_requests_running", "lmdeploy:num_requests_waiting", "lmdeploy:gpu_cache_usage_perc"),
])
def test_queue_waiting_shows_before_any_request(emulator, dialect, running, waiting, kv) -> None:
    emulator.set_profile("m", {"queue_waiting": 5, "kv_cache_usage": 0.75})
    text = emulator.metrics(dialect)
    assert _value(text, running, "m") == 0
    assert _value(text, waiting, "m") == 5
    assert _value(text, kv, "m") == 0.75
    assert f"# TYPE {waiting} gauge" in text


def test_vllm_running_and_real_queue_with_max_running(emulator) -> None:
    emulator.set_profile("m", {"ttft_ms": 600, "max_running": 1, "queue_waiting": 2})
    url = f"{emulator.base_url('vllm')}/chat/completions"
    threads = [threading.Thread(target=post, args=(url, chat_body(max_tokens=2))) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    text = emulator.metrics("vllm")
    assert _value(text, "vllm:num_requests_running", "m") == 1
    assert _value(text, "vllm:num_requests_waiting", "m") == 2 + 2  # two queued for the one slot + configured
    assert _value(text, "vllm:kv_cache_usage_perc", "m") == 1.0
    assert _value(text, "vllm:gpu_cache_usage_perc", "m") == 1.0
    assert emulator.stats()["m"]["in_flight"] == 3
    for thread in threads:
        thread.join()
    text = emulator.metrics("vllm")
    assert _value(text, "vllm:num_requests_running", "m") == 0
    assert _value(text, "vllm:num_requests_waiting", "m") == 2
    assert _value(text, "vllm:generation_tokens_total", "m") == 6
    assert 'vllm:request_success_total{model_name="m",engine="0",finished_reason="length"} 3.0' in text


def test_queued_request_starts_its_ttft_when_it_gets_a_slot(emulator) -> None:
    emulator.set_profile("m", {"ttft_ms": 300, "max_running": 1})
    url = f"{emulator.base_url('vllm')}/chat/completions"
    finished: list[float] = []
    start = time.monotonic()

    def call() -> None:
        post(url, chat_body(max_tokens=1))
        finished.append(time.monotonic() - start)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(finished)[1] >= 0.58  # the second waited for the first, then had its own TTFT


def test_llamacpp_metrics_are_unlabelled(emulator) -> None:
    emulator.set_profile("m", {"queue_waiting": 3})
    post(f"{emulator.base_url('llamacpp')}/chat/completions", chat_body(max_tokens=4))
    text = emulator.metrics("llamacpp")
    assert "llamacpp:requests_deferred 3.0" in text
    assert "llamacpp:requests_processing 0.0" in text
    assert "llamacpp:tokens_predicted_total 4.0" in text


def test_metrics_only_count_requests_served_through_that_dialect(emulator) -> None:
    post(f"{emulator.base_url('sglang')}/chat/completions", chat_body(model="seen", max_tokens=2))
    assert _value(emulator.metrics("sglang"), "sglang:generation_tokens_total", "seen") == 2
    assert 'model_name="seen"' not in emulator.metrics("vllm")


def test_ollama_has_no_metrics_but_self_hosted_health_routes_exist(emulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{emulator.url}/ollama/metrics")
    assert info.value.code == 404
    for path, body in (("/vllm/health", b""), ("/llamacpp/health", b'{"status": "ok"}'),
                       ("/lmdeploy/health", b'{"status": "healthy"}'), ("/ollama/", b"Ollama is running")):
        with urllib.request.urlopen(emulator.url + path) as resp:
            assert resp.status == 200 and resp.read() == body

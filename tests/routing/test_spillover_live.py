"""Self-hosted first, spill to paid: the emulated vLLM's queue metrics and this gateway's in-flight count."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.routing.support import emulator_and_gateway, provider, wait_for

pytestmark = pytest.mark.slow

LOCAL = "Qwen/Qwen3-8B"
GATEWAY = {
    "providers": {"gpu-box": provider("vllm", "self-hosted"), "deepseek": provider("deepseek", "cn")},
    "deployments": {
        "local-qwen": {"provider": "gpu-box", "model": LOCAL, "context_window": 32768},
        "paid": {"provider": "deepseek", "model": "deepseek-flash", "price": {"input": "0.14", "output": "0.28"}},
    },
    "route_groups": {
        "chat": {"deployments": ["local-qwen", "paid"],
                 "spillover": {"waiting_above": 0, "max_in_flight": 2, "scrape_interval_s": 0.2}},
    },
}
EMULATOR = {"default": {"output_tokens": 4}, "models": {LOCAL: {"dialect": "vllm"}}}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with emulator_and_gateway(tmp_path_factory.mktemp("spill"), EMULATOR, GATEWAY) as (emu, gw, _):
        with httpx.Client(base_url=gw.base_url, timeout=30) as http:
            yield emu, gw, http


def ask(http):
    resp = http.post("/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    return resp.headers["x-tollway-deployment"], resp.headers["x-tollway-route"]


def test_spills_to_paid_while_the_vllm_queue_is_not_empty_and_comes_back(live):
    emu, _, http = live
    assert ask(http)[0] == "local-qwen"
    emu.set_profile(LOCAL, {"dialect": "vllm", "queue_waiting": 3})
    assert 'vllm:num_requests_waiting{model_name="Qwen/Qwen3-8B",engine="0"} 3.0' in emu.metrics("vllm")
    try:
        deployment, reason = wait_for(lambda: (found := ask(http))[0] == "paid" and found, timeout=5,
                                      what="spill to paid after the next scrape")
        assert "spill: local-qwen saturated (queue 3 > 0) -> paid" in reason
        assert [ask(http)[0] for _ in range(5)] == ["paid"] * 5
    finally:
        emu.set_profile(LOCAL, {"dialect": "vllm"})
    wait_for(lambda: ask(http)[0] == "local-qwen", timeout=5, what="back to the self-hosted deployment")


def test_spills_when_this_gateways_requests_fill_the_deployment(live):
    emu, _, http = live
    emu.set_profile(LOCAL, {"dialect": "vllm", "ttft_ms": 800})
    try:
        with ThreadPoolExecutor(4) as pool:
            served = list(pool.map(lambda _: ask(http)[0], range(4)))
    finally:
        emu.set_profile(LOCAL, {"dialect": "vllm"})
    assert sorted(served) == ["local-qwen", "local-qwen", "paid", "paid"], served

"""No ledger row is lost when the gateway is stopped under load, and no secret ever leaks."""

import concurrent.futures
import signal
import time

import httpx
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config

pytestmark = pytest.mark.slow


def test_sigterm_during_load_loses_no_ledger_row(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"ttft_ms": 1000, "tpot_ms": 50, "output_tokens": 20}}})
    gw = gateway_factory(emulator_config(emu), env=PROVIDER_KEYS)
    n = 40
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=n))

    def one(i: int) -> tuple[int, str]:
        body = chat(f"request {i}", stream=bool(i % 2))
        with client.stream("POST", f"{gw.base_url}/chat/completions", json=body,
                           headers={"x-request-id": f"load-{i}"}) as response:
            response.read()
            return response.status_code, response.headers["x-request-id"]

    with client, concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        deadline = time.monotonic() + 10
        while emu.stats().get("deepseek-flash", {}).get("in_flight", 0) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emu.stats()["deepseek-flash"]["in_flight"] == n, "all requests are in flight before the signal"
        exit_code = gw.terminate(signal.SIGTERM)
        results = [f.result() for f in futures]
    assert exit_code == 0
    assert all(status == 200 for status, _ in results), "in-flight requests finish during graceful shutdown"
    rows = gw.rows()
    assert sorted(r["id"] for r in rows) == sorted(rid for _, rid in results)
    assert all(r["status"] == "ok" and r["completion_tokens"] == 20 for r in rows)


def test_provider_keys_never_leak(emulator_factory, gateway_factory, tmp_path):
    # the emulator expects another key, so every upstream answers 401 with its own error body
    emu = emulator_factory({"models": {m: {"api_key": "the-right-key"} for m in ("deepseek-flash", "qwen3.5-plus")}})
    gw = gateway_factory(emulator_config(emu), env=PROVIDER_KEYS)
    response = httpx.post(f"{gw.base_url}/chat/completions", json=chat(), headers={"x-request-id": "leak"})
    assert response.status_code == 503
    assert "upstream_auth 401" in response.json()["error"]["message"]
    row_text = str(gw.row("leak"))
    gw.terminate()
    everything = response.text + row_text + gw.log_text() + gw.ledger.read_bytes().decode("latin-1")
    for secret in PROVIDER_KEYS.values():
        assert secret not in everything
    assert "Authorization" not in str(emu.requests("deepseek-flash"))


def test_missing_key_env_fails_at_start_naming_the_variable(tmp_path):
    import subprocess
    import sys

    import yaml

    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "NOT_SET_ANYWHERE"}},
        "deployments": {"d": {"provider": "p", "model": "m"}}, "route_groups": {"g": {"deployments": ["d"]}}}))
    result = subprocess.run([sys.executable, "-m", "tollway.cli", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "providers.p.api_key_env: environment variable NOT_SET_ANYWHERE is not set" in result.stderr

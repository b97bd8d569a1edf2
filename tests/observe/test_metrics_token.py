"""/metrics behind a scrape token (`observe.metrics.token_env`), on real `tollway serve` processes: refused
without it or with a wrong one (an OpenAI-shaped 401), served with it, under `--workers 2` too."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY, free_port, running, stop

pytestmark = pytest.mark.slow
TOKEN = "scrape-token-7f3a9c1e5b"
ENV = {**PROVIDER_KEYS, "TOLLWAY_METRICS_TOKEN": TOKEN}
_REQUESTS = re.compile(r"^tollway_requests_total\{[^}]*\} (\S+)$", re.M)


def token_config(emu) -> dict:
    config = emulator_config(emu)
    config["observe"] = {"metrics": {"token_env": "TOLLWAY_METRICS_TOKEN"}}
    return config


def scrape(port: int, token: str | None = None, scheme: str = "Bearer") -> httpx.Response:
    headers = {"Connection": "close"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    return httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)


@pytest.mark.parametrize("given,scheme", [(None, "Bearer"), ("wrong-token", "Bearer"), (TOKEN + "x", "Bearer"),
                                          (TOKEN[:-1], "Bearer"), (TOKEN, "Basic")])
def test_a_scrape_without_the_token_is_refused(emulator, gateway_factory, given, scheme):
    gw = gateway_factory(token_config(emulator), env=ENV)
    answer = scrape(gw.port, given, scheme)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "authentication_error" and error["code"] == "invalid_metrics_token"
    assert "Authorization: Bearer" in error["message"] and "token_env" in error["message"]
    assert TOKEN not in answer.text


def test_a_scrape_with_the_token_is_served_and_the_token_shows_nowhere(emulator, gateway_factory):
    gw = gateway_factory(token_config(emulator), env=ENV)
    assert httpx.post(f"{gw.base_url}/chat/completions", json=chat(), timeout=30).status_code == 200
    answer = scrape(gw.port, TOKEN)
    assert answer.status_code == 200 and "tollway_requests_total" in answer.text
    assert scrape(gw.port, TOKEN, scheme="bearer").status_code == 200, "the scheme is case-insensitive"
    assert httpx.get(f"{gw.url}/healthz").status_code == 200, "only /metrics needs the token"
    gw.terminate()
    assert TOKEN not in gw.log_text() + answer.text


def test_without_a_token_configured_metrics_stay_open(emulator, gateway_factory):
    gw = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS)
    assert scrape(gw.port).status_code == 200


def test_every_worker_asks_for_the_token_and_serves_the_fleets_figures(emulator, tmp_path):
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(token_config(emulator)))
    port = free_port()
    cmd = [*TOLLWAY, "serve", "--config", str(config), "--port", str(port), "--ledger", str(tmp_path / "l.db"),
           "--workers", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/healthz", tmp_path / "serve.log", env=ENV) as proc:
        for i in range(8):  # one connection each, so the kernel spreads them over both workers
            answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(f"n{i}"), timeout=30,
                                headers={"Connection": "close"})
            assert answer.status_code == 200

        def counted() -> int:
            return int(sum(float(v) for v in _REQUESTS.findall(scrape(port, TOKEN).text)))

        deadline = time.monotonic() + 15
        while counted() != 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [counted() for _ in range(6)] == [8] * 6
        assert all(scrape(port).status_code == 401 for _ in range(6))
        assert stop(proc) == 0
    assert TOKEN not in (tmp_path / "serve.log").read_text()


def test_serve_stops_at_start_when_the_token_variable_is_not_set(emulator, tmp_path):
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(token_config(emulator)))
    result = subprocess.run([sys.executable, "-m", "tollway.cli", "serve", "--config", str(config),
                             "--port", str(free_port()), "--ledger", str(tmp_path / "l.db")],
                            capture_output=True, text=True, timeout=60, env={**_base_env(), **PROVIDER_KEYS})
    assert result.returncode == 1
    assert "observe.metrics.token_env: environment variable TOLLWAY_METRICS_TOKEN is not set" in result.stderr


def _base_env() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if name != "TOLLWAY_METRICS_TOKEN"}

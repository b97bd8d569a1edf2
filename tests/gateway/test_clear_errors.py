"""Errors a new user meets in the first hour, each seen as the user sees it: the real command's output."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config

LITELLM_CONFIG = Path(__file__).resolve().parent.parent / "migrate" / "litellm_proxy_config.yaml"


def tollway(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "tollway.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, **(env or {})})


@pytest.fixture
def busy_port():
    """A port another process (this test) already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def small_config(tmp_path: Path, **provider) -> Path:
    config = {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", **provider}},
              "deployments": {"d": {"provider": "p", "model": "m"}}, "route_groups": {"g": {"deployments": ["d"]}},
              "ledger": {"path": str(tmp_path / "ledger.db")}}
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_emulate_on_a_busy_port_says_so_in_one_line(busy_port):
    result = tollway("emulate", "--port", str(busy_port))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert output.strip() == (f"Error: cannot listen on 127.0.0.1:{busy_port}: Address already in use "
                              f"(another process listens there; choose another --port)")
    assert "listening on" not in output and "Traceback" not in output


def test_serve_on_a_busy_port_says_so_before_claiming_to_serve(tmp_path, busy_port):
    result = tollway("serve", "--config", str(small_config(tmp_path)), "--port", str(busy_port))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{busy_port}: Address already in use" in output
    assert "serving" not in output and "listening on" not in output and "Traceback" not in output
    assert not (tmp_path / "ledger.db").exists(), "nothing started before the bind failed"


def test_a_litellm_config_points_to_the_migration(tmp_path):
    result = tollway("serve", "--config", str(LITELLM_CONFIG))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "model_list, litellm_settings, router_settings, general_settings: this is a LiteLLM proxy config" \
        in result.stderr
    assert f"tollway migrate litellm {LITELLM_CONFIG} -o tollway.yaml" in result.stderr


def test_a_litellm_key_inside_a_tollway_config_is_named(tmp_path):
    path = small_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["deployments"]["d"]["litellm_params"] = {"model": "openai/gpt-4o"}
    path.write_text(yaml.safe_dump(config))
    result = tollway("serve", "--config", str(path))
    assert result.returncode == 1
    assert "deployments.d.litellm_params: unknown key: `litellm_params` is LiteLLM's" in result.stderr
    assert "tollway migrate litellm" in result.stderr


def test_an_inline_api_key_is_refused_with_the_way_to_name_it(tmp_path):
    result = tollway("serve", "--config", str(small_config(tmp_path, api_key="sk-live-inline-secret-42")))
    assert result.returncode == 1
    assert "providers.p.api_key: unknown key: a secret is never written in the config" in result.stderr
    assert "`api_key_env: VARIABLE`" in result.stderr and "`api_key_file: PATH`" in result.stderr
    assert "sk-live-inline-secret-42" not in result.stderr


def _log_lines(gw) -> list[str]:
    return [line for line in gw.log_text().splitlines() if line.strip()]


def test_json_logs_start_with_the_first_line(emulator, gateway_factory):
    config = emulator_config(emulator)
    config["observe"] = {"logs": {"format": "json", "requests": True}}
    gw = gateway_factory(config, env=PROVIDER_KEYS)
    gw.client().chat.completions.create(**chat())
    gw.rows(wait_for=1)
    assert gw.terminate() == 0
    lines = _log_lines(gw)
    assert len(lines) >= 3
    events = [orjson.loads(line) for line in lines]  # every line, the first included, is one JSON object
    assert events[0]["event"] == "listening" and events[0]["address"].endswith(f":{gw.port}/v1")
    assert any(e.get("event") == "request" for e in events)


def test_debug_shows_routing_and_attempts_that_info_does_not(emulator, gateway_factory):
    logs = {}
    for level in ("info", "debug"):
        gw = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS, extra_args=("--log-level", level))
        gw.client().chat.completions.create(**chat())
        gw.rows(wait_for=1)
        gw.terminate()
        logs[level] = gw.log_text()
    debug, info = logs["debug"], logs["info"]
    for line in ("tollway.serve: config loaded from", "tollway.serve: ledger:", "tollway.route: route {",
                 "tollway.route: upstream attempt {"):
        assert line in debug and line not in info, line
    assert '"deployment":"ds-flash"' in debug and '"outcome":"ok"' in debug
    assert len(debug.splitlines()) > len(info.splitlines())
    for secret in PROVIDER_KEYS.values():
        assert secret not in debug

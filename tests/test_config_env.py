"""Twelve-factor config: `${VAR}` in tollway.yaml and the TOLLWAY_* variables `tollway serve` reads,
with the precedence flag > variable > config file > default, and the errors a user sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.processes import REPO, free_port, running
from tollway.config import ConfigError, load_config
from tollway.config_env import ENV_CONFIG, ENV_HOST, ENV_PORT, EnvReferenceError, expand_env

CONFIG = """
server: {port: "${GATEWAY_PORT:-4000}"}
providers:
  gpu:
    kind: vllm
    base_url: "${VLLM_URL}/v1"
    jurisdiction: "${GPU_JURISDICTION:-self-hosted}"
    headers: {x-cost-centre: "team-$${literal}"}
deployments:
  qwen: {provider: gpu, model: "${MODEL}"}
route_groups:
  chat: {deployments: [qwen]}
"""


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "tollway.yaml"
    path.write_text(text)
    return path


def test_references_are_filled_from_the_environment_with_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_URL", "http://vllm-decode:8000")
    monkeypatch.setenv("MODEL", "Qwen/Qwen3-8B")
    monkeypatch.delenv("GPU_JURISDICTION", raising=False)
    monkeypatch.setenv("GATEWAY_PORT", "4100")
    config, _ = load_config(write(tmp_path))
    assert config.providers["gpu"].base_url == "http://vllm-decode:8000/v1"
    assert config.providers["gpu"].jurisdiction == "self-hosted"
    assert config.providers["gpu"].headers == {"x-cost-centre": "team-${literal}"}
    assert config.deployments["qwen"].model == "Qwen/Qwen3-8B"
    assert config.server.port == 4100  # a string from the environment, parsed by the config's own type


def test_an_unset_variable_is_a_config_error_naming_the_key_path_and_the_variable(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    monkeypatch.setenv("VLLM_URL", "http://vllm-decode:8000")
    monkeypatch.delenv("MODEL", raising=False)
    path = write(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: deployments.qwen.model: environment variable MODEL is not set "
                              "(set it, or write ${MODEL:-default} for a default)")


def test_a_value_the_environment_makes_invalid_fails_like_any_invalid_value(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_URL", "http://vllm-decode:8000")
    monkeypatch.setenv("MODEL", "m")
    monkeypatch.setenv("GATEWAY_PORT", "four thousand")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path))
    assert "server.port: Input should be a valid integer" in str(err.value)


def test_an_empty_variable_takes_the_default_and_without_one_stays_empty() -> None:
    env = {"EMPTY": ""}
    assert expand_env({"a": "${EMPTY:-fallback}", "b": "x${EMPTY}y"}, env) == {"a": "fallback", "b": "xy"}


def test_keys_lists_and_non_strings_are_left_alone() -> None:
    raw = {"${KEY}": ["${A}", 3, None, True, {"n": "${A:-}"}]}
    assert expand_env(raw, {"A": "1", "KEY": "nope"}) == {"${KEY}": ["1", 3, None, True, {"n": "1"}]}


def test_a_list_item_error_names_its_index() -> None:
    with pytest.raises(EnvReferenceError, match=r"^route_groups\.chat\.deployments\[1\]: environment variable B "):
        expand_env({"route_groups": {"chat": {"deployments": ["a", "${B}"]}}}, {})


@pytest.mark.parametrize("text", ["${unclosed", "${1ABC}", "${A:=x}", "${}"])
def test_a_malformed_reference_is_an_error_not_a_literal(text: str) -> None:
    with pytest.raises(EnvReferenceError, match=r"^providers\.p\.base_url: malformed \$\{\.\.\.\} reference"):
        expand_env({"providers": {"p": {"base_url": text}}}, {"A": "1"})


def test_a_value_containing_a_reference_is_not_expanded_twice() -> None:
    assert expand_env({"a": "${A}"}, {"A": "${B}", "B": "no"}) == {"a": "${B}"}


# --- tollway serve: TOLLWAY_* variables, real processes -------------------------------------------------

def _config_for(port: int) -> dict:
    """A config whose upstream address comes from ${EMULATOR_URL}."""
    return {"server": {"port": port},
            "providers": {"emu": {"kind": "openai", "base_url": "${EMULATOR_URL}/openai/v1"}},
            "deployments": {"m": {"provider": "emu", "model": "gpt-4o-mini"}},
            "route_groups": {"chat": {"deployments": ["m"]}}}


def _serve_env(tmp_path: Path, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_")}
    return {**base, "HOME": str(tmp_path), **env}


def _models(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as resp:
        return [m["id"] for m in json.loads(resp.read())["data"]]


@pytest.mark.slow
def test_serve_takes_config_port_and_urls_from_the_environment(tmp_path: Path, emulator) -> None:
    file_port, env_port = free_port(), free_port()
    config = tmp_path / "somewhere" / "gateway.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump(_config_for(file_port)))
    env = _serve_env(tmp_path, **{ENV_CONFIG: str(config), ENV_PORT: str(env_port), ENV_HOST: "127.0.0.1",
                                  "EMULATOR_URL": emulator.url})
    cmd = [sys.executable, "-m", "tollway.cli", "serve", "--ledger", str(tmp_path / "ledger.db")]
    with running(cmd, f"http://127.0.0.1:{env_port}/healthz", tmp_path / "serve.log", env=env, cwd=tmp_path):
        assert "chat" in _models(env_port)
        body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{env_port}/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.headers["x-tollway-deployment"] == "m"  # ${EMULATOR_URL} reached the emulator
    assert emulator.requests(), "the upstream named by ${EMULATOR_URL} got no request"


@pytest.mark.slow
def test_a_flag_beats_the_variable_which_beats_the_config_file(tmp_path: Path, emulator) -> None:
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    config = write(tmp_path, yaml.safe_dump(_config_for(file_port)))
    env = _serve_env(tmp_path, **{ENV_PORT: str(env_port), "EMULATOR_URL": emulator.url})
    cmd = [sys.executable, "-m", "tollway.cli", "serve", "--config", str(config), "--ledger", str(tmp_path / "l.db")]
    with running([*cmd, "--port", str(flag_port)], f"http://127.0.0.1:{flag_port}/healthz",
                 tmp_path / "flag.log", env=env):
        pass
    with running(cmd, f"http://127.0.0.1:{env_port}/healthz", tmp_path / "env.log", env=env):
        pass
    without_env = {k: v for k, v in env.items() if k != ENV_PORT}
    with running(cmd, f"http://127.0.0.1:{file_port}/healthz", tmp_path / "file.log", env=without_env):
        pass


def _serve_fails(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "tollway.cli", "serve", *args], capture_output=True, text=True,
                            timeout=60, env=_serve_env(tmp_path, **env), cwd=REPO)
    assert result.returncode != 0
    return result


def test_a_bad_port_variable_names_the_variable(tmp_path: Path) -> None:
    result = _serve_fails(tmp_path, [], **{ENV_PORT: "eighty"})
    assert "Invalid value for '--port' (env var: 'TOLLWAY_PORT'): 'eighty' is not a valid integer" in result.stderr


def test_a_bad_database_url_variable_is_named_and_its_password_is_not_shown(tmp_path: Path, emulator) -> None:
    config = write(tmp_path, yaml.safe_dump(_config_for(free_port())))
    result = _serve_fails(tmp_path, ["--config", str(config)], EMULATOR_URL=emulator.url,
                          TOLLWAY_DATABASE_URL="mysql://app:hunter2@db/tollway")
    assert "'--database-url' (or $TOLLWAY_DATABASE_URL)" in result.stderr
    assert "must start with postgresql://" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_serve_reports_an_unset_reference_and_exits(tmp_path: Path) -> None:
    config = write(tmp_path)
    result = _serve_fails(tmp_path, ["--config", str(config)], MODEL="m")
    assert result.returncode == 1
    assert "providers.gpu.base_url: environment variable VLLM_URL is not set" in result.stderr

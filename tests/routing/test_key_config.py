"""A provider's several keys in the config: each mistake is a config error naming the provider, the setting
and the variable or file, never a key's value; `tollway serve` stops at start with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tollway.config import ConfigError, load_config, resolve_api_keys

SECRET_A, SECRET_B = "sk-config-secret-aaaa", "sk-config-secret-bbbb"


def write(tmp_path: Path, provider: dict) -> Path:
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump({
        "providers": {"ds": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1", **provider}},
        "deployments": {"d": {"provider": "ds", "model": "m"}}, "route_groups": {"g": {"deployments": ["d"]}}}))
    return path


def keys_of(tmp_path: Path, provider: dict) -> list[tuple[str, str]]:
    config, _ = load_config(write(tmp_path, provider))
    return resolve_api_keys("ds", config.providers["ds"])


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("KC_A", SECRET_A)
    monkeypatch.setenv("KC_B", SECRET_B)
    monkeypatch.setenv("KC_SAME_AS_A", SECRET_A)


def test_envs_and_files_give_keys_in_order_and_one_key_still_works(tmp_path, env):
    assert keys_of(tmp_path, {"api_key_envs": ["KC_B", "KC_A"]}) == [("KC_B", SECRET_B), ("KC_A", SECRET_A)]
    assert keys_of(tmp_path, {"api_key_env": "KC_A"}) == [("KC_A", SECRET_A)]
    one, two = tmp_path / "one.key", tmp_path / "two.key"
    one.write_text(SECRET_A + "\n")
    two.write_text(SECRET_B)
    assert keys_of(tmp_path, {"api_key_files": [str(one), str(two)]}) == [(str(one), SECRET_A), (str(two), SECRET_B)]
    assert keys_of(tmp_path, {}) == [], "a provider that takes no key"


@pytest.mark.parametrize("provider,message", [
    ({"api_key_envs": []}, "providers.ds: Value error, api_key_envs is an empty list: name at least one key"),
    ({"api_key_envs": ["KC_A", "KC_B", "KC_A"]}, "api_key_envs names KC_A twice"),
    ({"api_key_files": ["/x/a", "/x/a"]}, "api_key_files names /x/a twice"),
    ({"api_key_envs": ["KC_A", ""]}, "api_key_envs has an empty entry"),
    ({"api_key_env": "KC_A", "api_key_envs": ["KC_B"]}, "not api_key_env and api_key_envs"),
    ({"api_key_envs": ["KC_A"], "api_key_files": ["/x/a"]}, "not api_key_envs and api_key_files"),
])
def test_malformed_key_lists_are_refused_at_load(tmp_path, env, provider, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, provider))
    assert message.removeprefix("providers.ds: Value error, ") in str(err.value)
    assert "providers.ds" in str(err.value)


def test_a_missing_variable_names_its_place_in_the_list(tmp_path, env):
    with pytest.raises(ConfigError) as err:
        keys_of(tmp_path, {"api_key_envs": ["KC_A", "KC_NOT_SET_ANYWHERE"]})
    assert str(err.value) == "providers.ds.api_key_envs[1]: environment variable KC_NOT_SET_ANYWHERE is not set"


def test_an_empty_key_file_is_named(tmp_path, env):
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    with pytest.raises(ConfigError) as err:
        keys_of(tmp_path, {"api_key_files": [str(empty)]})
    assert str(err.value) == f"providers.ds.api_key_files[0]: {empty} is empty"


def test_two_variables_holding_the_same_key_are_refused_without_showing_it(tmp_path, env):
    with pytest.raises(ConfigError) as err:
        keys_of(tmp_path, {"api_key_envs": ["KC_A", "KC_B", "KC_SAME_AS_A"]})
    assert str(err.value) == "providers.ds.api_key_envs: KC_A and KC_SAME_AS_A hold the same key; list each key once"


def test_serve_stops_at_start_naming_the_missing_variable(tmp_path):
    path = write(tmp_path, {"api_key_envs": ["KC_PRESENT", "KC_ABSENT"]})
    result = subprocess.run([sys.executable, "-m", "tollway.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KC_PRESENT": SECRET_A})
    assert result.returncode == 1
    assert "providers.ds.api_key_envs[1]: environment variable KC_ABSENT is not set" in result.stderr
    assert SECRET_A not in result.stderr + result.stdout

"""Config validation: defaults, inheritance, precedence, and errors that name file, key path and value."""

from __future__ import annotations

import subprocess

import pytest

from tests.processes import TOLLWAY, free_port
from tollway.emulator.profiles import ConfigError, build_config, load_config


def test_defaults_are_zero_delay_sixteen_tokens() -> None:
    config = build_config(None)
    assert config.default.ttft_ms == 0 and config.default.tpot_ms == 0
    assert config.default.output_tokens == 16 and config.default.tokens_per_chunk == 1
    assert config.profile_for("anything") is config.default


def test_models_inherit_unset_fields_from_default() -> None:
    config = build_config({"default": {"ttft_ms": 40, "output_tokens": 7},
                           "models": {"a": {"output_tokens": 3}}})
    assert config.models["a"].ttft_ms == 40
    assert config.models["a"].output_tokens == 3
    assert config.profile_for("b").output_tokens == 7


def test_cli_flags_override_the_file_default() -> None:
    config = build_config({"default": {"ttft_ms": 40, "tpot_ms": 5}}, {"ttft_ms": 10})
    assert config.default.ttft_ms == 10 and config.default.tpot_ms == 5


@pytest.mark.parametrize("raw, expected", [
    ({"models": {"m": {"ttft_ms": -1}}}, "cfg.yaml: models.m.ttft_ms: Input should be greater than or equal to 0 (got -1)"),
    ({"models": {"m": {"faults": [{"kind": "rate_limit", "probability": 1.5}]}}},
     "cfg.yaml: models.m.faults[0].probability: Input should be less than or equal to 1 (got 1.5)"),
    ({"models": {"m": {"faults": [{"kind": "explode"}]}}}, "cfg.yaml: models.m.faults[0].kind: Input should be"),
    ({"models": {"m": {"tpot": 3}}}, "cfg.yaml: models.m.tpot: unknown key"),
    ({"modles": {}}, "cfg.yaml: modles: unknown key"),
    ({"models": {"m": {"faults": [{"kind": "stall"}]}}}, "models.m.faults[0]: Value error, kind stall needs stall_s"),
    ({"models": {"m": {"faults": [{"kind": "rate_limit", "every": 2, "first": 1}]}}},
     "use at most one of probability/every/first/after, got every, first"),
    ({"models": {"m": {"faults": [{"kind": "server_error", "status": 418}]}}},
     "server_error status must be one of (500, 502, 503, 504), got 418"),
    ({"models": {"m": {"faults": [{"kind": "rate_limit", "stall_s": 1}]}}},
     "'stall_s' applies only to kind stall, not rate_limit"),
    ({"default": {"dialect": "bard"}}, "cfg.yaml: default.dialect: Input should be"),
    ({"models": {"m": 3}}, "cfg.yaml: models.m: must be a mapping, got int"),
])
def test_bad_config_names_file_key_path_and_problem(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(raw, origin="cfg.yaml")
    assert expected in str(info.value)


def test_api_key_value_is_never_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"default": {"api_key": ["sk-secret-value"]}}, origin="cfg.yaml")
    assert "default.api_key" in str(info.value)
    assert "sk-secret-value" not in str(info.value)


def test_public_dict_redacts_api_key() -> None:
    profile = build_config({"default": {"api_key": "sk-secret"}}).default
    assert profile.public_dict()["api_key"] == "***"
    assert "sk-secret" not in repr(profile)


def test_load_config_reports_unreadable_and_malformed_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: cannot read the config file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: the top level must be a mapping"):
        load_config(listed)


def test_bad_config_fails_the_command_at_start(tmp_path) -> None:
    bad = tmp_path / "emulator.yaml"
    bad.write_text("models:\n  deepseek-chat:\n    faults:\n      - kind: rate_limit\n        probability: 2\n")
    result = subprocess.run([*TOLLWAY, "emulate", "--port", str(free_port()), "--config", str(bad)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert f"{bad}: models.deepseek-chat.faults[0].probability: Input should be less than or equal to 1 (got 2)" \
        in result.stderr

"""Config loading: a good file loads; each kind of mistake names the file, the key path and the fix."""

from pathlib import Path

import pytest

from tollway.config import ConfigError, load_config, resolve_api_key

GOOD = """
providers:
  deepseek:
    kind: deepseek
    base_url: https://api.deepseek.com/v1
    api_key_env: TEST_DEEPSEEK_KEY
    jurisdiction: cn
  local:
    kind: vllm
    base_url: http://127.0.0.1:8000/v1
    jurisdiction: self-hosted
deployments:
  ds-flash:
    provider: deepseek
    model: deepseek-flash
    context_window: 1000000
    capabilities: [tools, json, reasoning]
  qwen-local:
    provider: local
    model: Qwen/Qwen3-8B
    aliases: [qwen-small]
route_groups:
  chat:
    deployments: [qwen-local, ds-flash]
    aliases: [gpt-4o-mini]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tollway.yaml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path):
    config, path = load_config(write(tmp_path, GOOD))
    assert path.name == "tollway.yaml"
    assert config.route_groups["chat"].deployments == ["qwen-local", "ds-flash"]
    assert config.providers["deepseek"].resolved_dialect == "deepseek"
    assert config.deployments["qwen-local"].aliases == ["qwen-small"]


@pytest.mark.parametrize("broken, expected", [
    (GOOD.replace("    model: deepseek-flash\n", "    model: deepseek-flash\n    contxt_window: 5\n"),
     "deployments.ds-flash.contxt_window: unknown key"),
    (GOOD.replace("provider: local\n", "provider: nowhere\n"),
     "deployments.qwen-local.provider: no provider named 'nowhere'"),
    (GOOD.replace("[qwen-local, ds-flash]", "[qwen-local, ds-pro]"),
     "route_groups.chat.deployments: no deployment named 'ds-pro'"),
    (GOOD.replace("base_url: https://api.deepseek.com/v1", "base_url: api.deepseek.com"),
     "providers.deepseek: base_url 'api.deepseek.com' must start with http:// or https://"),
    (GOOD.replace("[tools, json, reasoning]", "[tools, telepathy]"),
     "deployments.ds-flash.capabilities: unknown capabilities ['telepathy']"),
    (GOOD.replace("context_window: 1000000", "context_window: -4"),
     "deployments.ds-flash.context_window: Input should be greater than 0"),
    (GOOD.replace("aliases: [gpt-4o-mini]", "aliases: [qwen-small]"),
     "public model name 'qwen-small' is used by both"),
    (GOOD.replace("kind: vllm", "kind: vllm\n    dialect: grpc"), "providers.local: dialect 'grpc' is not one of"),
])
def test_each_mistake_names_its_key_path(tmp_path, broken, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, broken))
    assert str(tmp_path / "tollway.yaml") in str(err.value)
    assert expected in str(err.value)


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "providers: [unclosed"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- just a list"))


def test_secret_from_env_and_file_is_never_in_errors(tmp_path, monkeypatch):
    config, _ = load_config(write(tmp_path, GOOD))
    provider = config.providers["deepseek"]
    monkeypatch.delenv("TEST_DEEPSEEK_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable TEST_DEEPSEEK_KEY is not set"):
        resolve_api_key("deepseek", provider)
    monkeypatch.setenv("TEST_DEEPSEEK_KEY", "sk-supersecret-123\n")
    assert resolve_api_key("deepseek", provider) == "sk-supersecret-123"

    key_file = tmp_path / "key.txt"
    key_file.write_text("")
    with_file = provider.model_copy(update={"api_key_env": None, "api_key_file": key_file})
    with pytest.raises(ConfigError, match="is empty"):
        resolve_api_key("deepseek", with_file)
    key_file.write_text("sk-from-file")
    assert resolve_api_key("deepseek", with_file) == "sk-from-file"


def test_builtin_default_config_serves_local_model():
    from tollway.config import BUILTIN_CONFIG

    config, _ = load_config(BUILTIN_CONFIG)
    assert config.providers["local"].launch == "llama-server"
    assert "local" in config.route_groups

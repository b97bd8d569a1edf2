"""`tollway migrate litellm`: LiteLLM proxy configs from LiteLLM's own docs and examples become tollway
configs that tollway's loader accepts, and every setting without an equivalent is named on its own line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gateway.support import PROVIDER_KEYS, chat
from tollway.config import load_config

HERE = Path(__file__).resolve().parent
FIXTURES = sorted(HERE.glob("litellm_*.yaml"))


def migrate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tollway.cli", "migrate", "litellm", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, env={**os.environ})


def migrated(tmp_path: Path, source: Path) -> tuple[dict, list[str]]:
    """The translated config as loaded by tollway's own loader, and the notes printed (one a line)."""
    out = tmp_path / "tollway.yaml"
    result = migrate(str(source), "-o", str(out))
    assert result.returncode == 0, result.stderr
    config, _ = load_config(out)  # raises if tollway would not start with it
    notes = [line.strip() for line in result.stderr.splitlines()[2:]]
    assert result.stderr.splitlines()[0] == f"wrote {out}"
    assert result.stderr.splitlines()[1] == f"{len(notes)} settings had no exact equivalent:"
    return yaml.safe_load(out.read_text()), notes


@pytest.mark.parametrize("source", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_each_documented_config_translates_into_one_tollway_loads(tmp_path, source):
    config, notes = migrated(tmp_path, source)
    assert config["route_groups"] and config["deployments"] and config["providers"]
    assert all(": " in note for note in notes), "every note names the setting, then says why"
    printed = migrate(str(source))
    assert printed.returncode == 0 and yaml.safe_load(printed.stdout) == config, "stdout without -o"


def test_the_config_docs_quick_start(tmp_path):
    config, notes = migrated(tmp_path, HERE / "litellm_proxy_config.yaml")
    group = config["route_groups"]["gpt-3.5-turbo"]
    assert group["deployments"] == ["gpt-turbo-small-eu", "gpt-turbo-small-ca"]
    assert group["strategy"] == "weighted" and group["weights"] == {"gpt-turbo-small-eu": 6, "gpt-turbo-small-ca": 6}
    eu = config["providers"][config["deployments"]["gpt-turbo-small-eu"]["provider"]]
    assert eu == {"kind": "openai", "base_url": "https://my-endpoint-europe-berri-992.openai.azure.com/openai/v1",
                  "jurisdiction": "us", "api_key_env": "AZURE_API_KEY_EU", "timeouts": {"response_s": 30.0}}
    assert config["limits"]["deployments"]["facebook-opt-125m"] == {"rpm": 1440}
    assert config["deployments"]["facebook-opt-125m"]["model"] == "facebook/opt-125m"
    assert config["retry"] == {"max_attempts": 4}, "2 retries, then one try of the group's other deployment"
    assert config["server"]["api_keys_env"] == ["TOLLWAY_MASTER_KEY"]
    assert "sk-1234" not in (tmp_path / "tollway.yaml").read_text(), "an inline secret is never copied"
    assert ("model_list[1] (bedrock-claude-v1): bedrock/anthropic.claude-instant-v1: left out: AWS Bedrock needs "
            "SigV4-signed requests, which tollway does not make") in notes
    assert "litellm_settings.success_callback: no equivalent: tollway records every request in its ledger and " \
           "exports metrics, logs and traces (docs/observability.md)" in notes
    assert any(n.startswith("general_settings.master_key: clients and the admin API accept the key in "
                            "$TOLLWAY_MASTER_KEY: the key was written in the file and is not copied") for n in notes)
    assert any(n.startswith("general_settings.alerting: no equivalent") for n in notes)


def test_the_load_balancing_docs_example(tmp_path):
    config, notes = migrated(tmp_path, HERE / "litellm_load_balancing.yaml")
    group = config["route_groups"]["gpt-3.5-turbo"]
    assert group["aliases"] == ["gpt-4"] and len(group["deployments"]) == 3
    assert group["weights"] == {"gpt-turbo-small-eu": 6, "gpt-turbo-small-ca": 6, "gpt-turbo-large": 1440}
    assert sorted(config["providers"]) == ["azure", "azure-2", "azure-3"]
    assert "redis_url" not in config
    assert any(n.startswith("router_settings.redis_host: Redis with a password: set redis_url: "
                            "redis://:PASSWORD@redis.internal:1992/0 yourself") for n in notes)


def test_the_fallbacks_example(tmp_path):
    config, notes = migrated(tmp_path, HERE / "litellm_fallbacks.yaml")
    groups, providers = config["route_groups"], config["providers"]
    assert groups["sf-deepseek-r1"] == {"deployments": ["deepseek-ai-DeepSeek-R1-Distill-Qwen-7B",
                                                        "Qwen-Qwen2.5-72B-Instruct", "glm-4-flash"],
                                        "strategy": "priority"}
    assert groups["deepseek-chat"]["deployments"] == ["deepseek-chat", "qwen-plus"]
    assert providers["deepseek"] == {"kind": "deepseek", "base_url": "https://api.deepseek.com/v1",
                                     "jurisdiction": "cn", "api_key_env": "DEEPSEEK_API_KEY",
                                     "timeouts": {"response_s": 60.0}}
    assert providers["qwen"]["kind"] == "qwen" and providers["qwen"]["api_key_env"] == "DASHSCOPE_API_KEY"
    assert providers["glm"]["base_url"] == "https://open.bigmodel.cn/api/paas/v4"
    assert providers["siliconflow"]["base_url"] == "https://api.siliconflow.cn/v1"
    assert config["limits"]["deployments"] == {"qwen-plus": {"tpm": 100000}}
    assert config["server"] == {"host": "127.0.0.1", "port": 4000}
    assert ("router_settings.routing_strategy: usage-based-routing-v2 -> strategy: priority: tollway paces each "
            "deployment under its rpm/tpm (limits.deployments) and moves to the next one with room, in the group's "
            "order") in notes
    assert "litellm_settings.cache: no equivalent: tollway does not cache answers" in notes


def test_inline_keys_are_not_copied_and_the_variable_is_named(tmp_path):
    source = tmp_path / "litellm.yaml"
    source.write_text(yaml.safe_dump({"model_list": [{"model_name": "gpt-4o", "litellm_params": {
        "model": "openai/gpt-4o", "api_key": "sk-proj-live-secret-9f8e7d", "temperature": 0.2,
        "input_cost_per_token": 0.0000025, "output_cost_per_token": 0.00001}}]}))
    result = migrate(str(source))
    assert result.returncode == 0, result.stderr
    assert "sk-proj-live-secret-9f8e7d" not in result.stdout + result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["providers"]["openai"]["api_key_env"] == "OPENAI_API_KEY"
    assert config["deployments"]["gpt-4o"]["price"] == {"input": "2.5", "output": "10"}, "exact USD per million"
    assert "model_list[0] (gpt-4o): api_key is written in the file: it is not copied" in result.stderr
    assert ("model_list[0] (gpt-4o).litellm_params.temperature: no equivalent: tollway sends each request's own "
            "parameters untouched; it sets no defaults") in result.stderr


def test_what_cannot_be_translated_is_an_error_not_a_broken_file(tmp_path):
    only_bedrock = tmp_path / "bedrock.yaml"
    only_bedrock.write_text(yaml.safe_dump({"model_list": [{"model_name": "claude", "litellm_params": {
        "model": "bedrock/anthropic.claude-3"}}]}))
    result = migrate(str(only_bedrock), "-o", str(tmp_path / "out.yaml"))
    assert result.returncode == 1 and not (tmp_path / "out.yaml").exists()
    assert "no model in model_list could be translated" in result.stderr and "AWS Bedrock" in result.stderr
    tollway_file = tmp_path / "tollway.yaml"
    tollway_file.write_text("providers: {}\n")
    not_litellm = migrate(str(tollway_file))
    assert not_litellm.returncode == 1 and "not a LiteLLM proxy config: it has no model_list" in not_litellm.stderr
    exists = migrate(str(HERE / "litellm_fallbacks.yaml"), "-o", str(tollway_file))
    assert exists.returncode == 1 and "exists; pass --force to overwrite it" in exists.stderr
    assert tollway_file.read_text() == "providers: {}\n"


def test_a_migrated_config_serves_requests_with_failover(tmp_path, emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"qwen3.5-plus": {"faults": [{"kind": "server_error", "status": 500,
                                                                    "every": 1}]}}})
    source = tmp_path / "litellm.yaml"
    source.write_text(yaml.safe_dump({
        "model_list": [
            {"model_name": "chat", "litellm_params": {"model": "dashscope/qwen3.5-plus", "api_base": emu.base_url("qwen"),
                                                      "api_key": "os.environ/QW_KEY"}},
            {"model_name": "backup", "litellm_params": {"model": "deepseek/deepseek-flash",
                                                        "api_base": emu.base_url("deepseek"),
                                                        "api_key": "os.environ/DS_KEY", "rpm": 100}},
        ],
        "router_settings": {"fallbacks": [{"chat": ["backup"]}], "num_retries": 1},
    }))
    result = migrate(str(source))
    assert result.returncode == 0, result.stderr
    gw = gateway_factory(yaml.safe_load(result.stdout), env=PROVIDER_KEYS)
    answer = gw.client().chat.completions.with_raw_response.create(**chat(), extra_headers={"x-request-id": "m-1"})
    assert answer.parse().choices[0].message.content
    row = gw.row("m-1")
    assert (row["route_group"], row["deployment"], row["provider"]) == ("chat", "deepseek-flash", "deepseek")
    assert [a["outcome"] for a in row["attempts"]][-1] == "ok" and len(row["attempts"]) >= 2

"""The README's worked example (docs/examples/two-providers.yaml) is a valid config that does what it says."""

from pathlib import Path

from tollway.config import load_config
from tollway.routing.table import RouteTable

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "two-providers.yaml"


def test_two_provider_example_loads_and_falls_back_in_order():
    config, _ = load_config(EXAMPLE)
    table = RouteTable(config, resolve_secrets=False)
    chat = table.group_for("chat")
    assert chat is table.group_for("gpt-4o-mini")
    assert [d.name for d in chat.deployments] == ["deepseek-flash", "qwen-plus", "smollm2"]
    assert [d.jurisdiction for d in chat.deployments] == ["cn", "sg", "self-hosted"]
    assert config.providers["local"].launch == "llama-server"
    assert config.server.api_keys_env == ["TOLLWAY_CLIENT_KEY"]

"""A provider key never leaves the gateway in an upstream's message, whichever header carries it
(Bearer, Anthropic's x-api-key, Azure's api-key, Gemini's x-goog-api-key)."""

from __future__ import annotations

import pytest

from tollway.config import Config
from tollway.routing.table import RouteTable
from tollway.routing.walk import _redact

KINDS = {"deepseek": {"kind": "deepseek"}, "anthropic": {"kind": "anthropic"},
         "azure": {"kind": "openai", "dialect": "azure", "api_version": "2024-10-21"}, "gemini": {"kind": "gemini"}}


@pytest.mark.parametrize("provider", list(KINDS))
def test_the_key_is_redacted_from_upstream_messages(provider, monkeypatch):
    monkeypatch.setenv("KEY", "sk-very-secret-7f3a")
    config = Config.model_validate({
        "providers": {"p": {**KINDS[provider], "base_url": "http://127.0.0.1:9/v1", "api_key_env": "KEY"}},
        "deployments": {"d": {"provider": "p", "model": "m", "price": {"input": "1", "output": "1"}}},
        "route_groups": {"g": {"deployments": ["d"]}},
    })
    dep = RouteTable(config).deployments["d"]
    assert any("sk-very-secret-7f3a" in v for v in dep.headers.values()), "the key travels in its own header"
    message = _redact("invalid key 'sk-very-secret-7f3a' for this account", dep)
    assert "sk-very-secret-7f3a" not in message and "***" in message
    assert "sk-very-secret-7f3a" not in repr(dep)

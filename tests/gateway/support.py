"""Gateway configs pointing at a running emulator, for the integration tests."""

from __future__ import annotations

PROVIDER_KEYS = {"DS_KEY": "sk-ds-test-secret-0001", "QW_KEY": "sk-qw-test-secret-0002", "KM_KEY": "sk-km-test-secret-0003"}


def emulator_config(emu, *, group: list[str] | None = None, retry: dict | None = None, breaker: dict | None = None,
                    timeouts: dict | None = None, server: dict | None = None) -> dict:
    """DeepSeek, Qwen and Kimi deployments on one emulator; `chat` walks them in the given order."""
    timeouts = timeouts or {"connect_s": 2, "first_byte_s": 3, "between_chunks_s": 2, "response_s": 5}
    return {
        "server": {"request_deadline_s": 30, **(server or {})},
        "retry": {"max_attempts": 6, "retries_per_deployment": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                  "retry_after_cap_s": 2, **(retry or {})},
        "breaker": {"consecutive_failures": 3, "open_s": 1.0, **(breaker or {})},
        "providers": {
            "deepseek": {"kind": "deepseek", "base_url": emu.base_url("deepseek"), "api_key_env": "DS_KEY",
                         "jurisdiction": "cn", "timeouts": timeouts},
            "qwen": {"kind": "qwen", "base_url": emu.base_url("qwen"), "api_key_env": "QW_KEY",
                     "jurisdiction": "sg", "timeouts": timeouts},
            "kimi": {"kind": "kimi", "base_url": emu.base_url("kimi"), "api_key_env": "KM_KEY",
                     "jurisdiction": "cn", "timeouts": timeouts},
        },
        "deployments": {
            "ds-flash": {"provider": "deepseek", "model": "deepseek-flash", "context_window": 4000},
            "ds-pro": {"provider": "deepseek", "model": "deepseek-v4-pro", "context_window": 4000},
            "qwen-plus": {"provider": "qwen", "model": "qwen3.5-plus", "context_window": 4000,
                          "capabilities": ["vision", "tools", "json"]},
            "kimi-big": {"provider": "kimi", "model": "kimi-k2.5", "context_window": 200000},
        },
        "route_groups": {"chat": {"deployments": group or ["ds-flash", "qwen-plus"], "aliases": ["gpt-4o-mini"]}},
    }


def chat(content: str = "Hello there", **extra) -> dict:
    return {"model": "chat", "messages": [{"role": "user", "content": content}], **extra}

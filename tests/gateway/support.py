"""Helpers of the gateway tests: configs pointing at a running emulator (integration tests), and a
transport that records writes with a stand-in gateway for the hot-path server tested in process."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from decimal import Decimal

from tollway.catalog import Catalog
from tollway.catalog.cost import cost_usd
from tollway.core.usage import Usage

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


class FakeTransport(asyncio.Transport):
    """Records what the server writes; `closed` once it closes or aborts."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def fake_gateway(max_body_bytes: int) -> type:
    """What HotPathServer reads of a gateway: the body limit, and the services each request is handed
    (the stand-ins for RequestLife in these tests need none)."""
    server = type("server", (), {"max_body_bytes": max_body_bytes})
    return type("FakeGateway", (), {"config": type("config", (), {"server": server}), "services": None})


# A gateway with a DeepSeek group and a Claude group on one emulator (the Messages endpoint's tests).
CLAUDE = "claude-fable-5.1"
AN_KEY = "sk-ant-test-0001"
CLAUDE_TIMEOUTS = {"connect_s": 2, "first_byte_s": 3, "between_chunks_s": 2, "response_s": 5}


def with_claude(config: dict, emu) -> dict:
    config = copy.deepcopy(config)
    config["providers"]["anthropic"] = {"kind": "anthropic", "base_url": f"{emu.url}/anthropic/v1",
                                        "api_key_env": "AN_KEY", "timeouts": CLAUDE_TIMEOUTS}
    config["deployments"]["claude"] = {"provider": "anthropic", "model": CLAUDE, "max_output": 1024}
    config["route_groups"]["claude"] = {"deployments": ["claude"]}
    return config


def expected_cost(row: dict) -> Decimal:
    price = Catalog.load().price(row["provider"], row["upstream_model"], datetime.fromisoformat(row["ts"]),
                                 row["prompt_tokens"])
    return cost_usd(Usage(row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"],
                          row["completion_tokens"], row["reasoning_tokens"]), price)

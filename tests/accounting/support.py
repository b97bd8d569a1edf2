"""Gateway configs with keys and budgets on the emulator, and a small client for the admin API."""

from __future__ import annotations

import copy
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import httpx
import yaml

from tests.fixtures.gateway import GatewayHandle
from tests.gateway.support import PROVIDER_KEYS, emulator_config
from tests.processes import TOLLWAY, free_port, running

ADMIN_KEY = "admin-key-for-tests-7f3a"
ENV = {**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY}
# Prices chosen so every request costs a few cents in exact decimals: $1000/M input, $2000/M output.
PRICE = {"input": "1000", "output": "2000"}


def budget_config(emu, **sections) -> dict:
    """DeepSeek then Qwen on the emulator, both priced at PRICE, the admin API on, plus `sections`."""
    config = copy.deepcopy(emulator_config(emu, server={"admin_key_env": "TOLLWAY_ADMIN_KEY"}))
    for dep in config["deployments"].values():
        dep["price"] = dict(PRICE)
    config.update(sections)
    return config


def request_cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    return (prompt_tokens * Decimal(PRICE["input"]) + completion_tokens * Decimal(PRICE["output"])).scaleb(-6)


class Admin:
    """The admin API of one gateway."""

    def __init__(self, gateway, key: str = ADMIN_KEY) -> None:
        self.http = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def create_key(self, **fields) -> tuple[str, str]:
        reply = self.http.post("/admin/keys", json={"name": "test", **fields})
        assert reply.status_code == 201, reply.text
        body = reply.json()
        return body["id"], body["secret"]

    def revoke(self, key_id: str) -> dict:
        reply = self.http.post(f"/admin/keys/{key_id}/revoke")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def budgets(self) -> list[dict]:
        reply = self.http.get("/admin/budgets")
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    def budget(self, key_id: str, window: str = "daily") -> dict:
        [found] = [b for b in self.budgets() if b["id"] == key_id and b["window"] == window]
        return found

    def settled_budget(self, key_id: str, window: str = "daily", timeout: float = 10.0) -> dict:
        """The key's budget once no request holds anything on it (settles run in the background)."""
        def settled() -> dict | None:
            found = self.budget(key_id, window)
            return found if found["reserved_usd"] == "0" else None
        return wait_for(settled, timeout)

    def events(self) -> list[dict]:
        return self.http.get("/admin/events").json()["data"]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def start_gateway(stack: ExitStack, tmp: Path, config: dict, name: str = "gw", env: dict | None = None,
                  extra_args: tuple[str, ...] = ()) -> GatewayHandle:
    """`tollway serve` as a real process, stopped when `stack` closes (for module-scoped setups)."""
    config_path = tmp / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    port, ledger, log = free_port(), tmp / f"{name}-ledger.db", tmp / f"{name}.log"
    cmd = [*TOLLWAY, "serve", "--config", str(config_path), "--port", str(port), "--ledger", str(ledger), *extra_args]
    proc = stack.enter_context(running(cmd, f"http://127.0.0.1:{port}/healthz", log, env={**ENV, **(env or {})}))
    return GatewayHandle(port, ledger, log, proc)

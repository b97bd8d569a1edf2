"""Helpers for the routing tests: route tables built from config dicts (no processes, no secrets), and one
emulator with one gateway as real processes, which the live routing tests share to stay fast.

In the live pair the emulator stands in for every provider; each deployment in a config is one emulator model
under one dialect path, with its provider's jurisdiction. Tests that change emulator profiles restore them.
"""

from __future__ import annotations

import random
import subprocess
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson
import yaml
from multidict import CIMultiDict

from tests.fixtures.emulator import EmulatorHandle
from tests.fixtures.gateway import GatewayHandle
from tests.processes import TOLLWAY, free_port, running
from tollway.accounting.tickets import Key
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.core.request import parse_request
from tollway.routing.planner import Decision, Planner
from tollway.routing.table import RouteTable

_CATALOG = Catalog.load()

PROVIDERS = {
    "deepseek": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/deepseek/v1", "jurisdiction": "cn"},
    "qwen": {"kind": "qwen", "base_url": "http://127.0.0.1:9/qwen/v1", "jurisdiction": "sg"},
    "mistral": {"kind": "openai", "base_url": "http://127.0.0.1:9/openai/v1", "jurisdiction": "eu"},
    "openai": {"kind": "openai", "base_url": "http://127.0.0.1:9/openai/v1", "jurisdiction": "us"},
    "local": {"kind": "vllm", "base_url": "http://127.0.0.1:9/vllm/v1", "jurisdiction": "self-hosted"},
}

DEPLOYMENTS = {
    # $/M input, output: cheap-text 0.10/0.40, vision-mid 0.50/1.50, long-big 2.00/8.00, local free
    "cheap-text": {"provider": "deepseek", "model": "m-cheap", "context_window": 4000, "capabilities": ["tools", "json"],
                   "strong_in": ["zh", "code"], "price": {"input": "0.10", "output": "0.40"}},
    "vision-mid": {"provider": "qwen", "model": "m-vision", "context_window": 4000,
                   "capabilities": ["vision", "tools", "json"], "strong_in": ["zh"],
                   "price": {"input": "0.50", "output": "1.50"}},
    "long-big": {"provider": "openai", "model": "m-long", "context_window": 200000,
                 "capabilities": ["vision", "tools", "json"], "price": {"input": "2.00", "output": "8.00"}},
    "eu-model": {"provider": "mistral", "model": "m-eu", "context_window": 32000, "capabilities": ["tools"],
                 "price": {"input": "1.00", "output": "3.00"}},
    "local-vllm": {"provider": "local", "model": "Qwen/Qwen3-8B", "context_window": 32000},
}


def config(groups: dict[str, dict[str, Any]], deployments: dict | None = None, **extra: Any) -> Config:
    return Config.model_validate({"providers": PROVIDERS, "deployments": {**DEPLOYMENTS, **(deployments or {})},
                                  "route_groups": groups, **extra})


def table(groups: dict[str, dict[str, Any]], deployments: dict | None = None, **extra: Any) -> RouteTable:
    return RouteTable(config(groups, deployments, **extra), _CATALOG, resolve_secrets=False)


def planner(seed: int = 1) -> Planner:
    return Planner(DeploymentPricer(_CATALOG), random.Random(seed))


def request(model: str = "g", content: Any = "Hello there", **extra: Any):
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return parse_request("chat", orjson.dumps(body))


def decide(tbl: RouteTable, creq, key: Key | None = None, headers: dict[str, str] | None = None,
           plan: Planner | None = None) -> Decision:
    """Filter and (unless a filter failed) rank, as the gateway's router does."""
    plan = plan or planner()
    hdrs = CIMultiDict(headers or {})
    decision = plan.filter(tbl.group_for(creq.model), creq, key, hdrs)
    if decision.error is None:
        plan.rank(decision, hdrs)
    return decision


def names(decision: Decision) -> list[str]:
    return [d.name for d in decision.ordered]


FAST_TIMEOUTS = {"connect_s": 2, "first_byte_s": 3, "between_chunks_s": 2, "response_s": 5}


@contextmanager
def emulator_and_gateway(tmp: Path, emulator_config: dict, gateway_config: dict, keys: dict[str, str] | None = None,
                         ) -> Iterator[tuple[EmulatorHandle, GatewayHandle, dict[str, str]]]:
    """Start an emulator, then a gateway whose `base_url`s say EMU (replaced by the emulator's URL).

    `keys` maps a name to a residency list ("" for none): virtual keys are created in the gateway's key store
    before it starts; their secrets are returned by name."""
    with ExitStack() as stack:
        emu_port = free_port()
        emu_config = tmp / "emulator.yaml"
        emu_config.write_text(yaml.safe_dump(emulator_config))
        emu_url = f"http://127.0.0.1:{emu_port}"
        emu_proc = stack.enter_context(running([*TOLLWAY, "emulate", "--host", "127.0.0.1", "--port", str(emu_port),
                                                "--config", str(emu_config)], f"{emu_url}/healthz", tmp / "emulator.log"))
        emu = EmulatorHandle(emu_url, tmp / "emulator.log", emu_proc)
        config = orjson.loads(orjson.dumps(gateway_config).replace(b"EMU", emu_url.encode()))
        config_path, ledger, log = tmp / "tollway.yaml", tmp / "ledger.db", tmp / "gateway.log"
        config_path.write_text(yaml.safe_dump(config))
        secrets = {name: _create_key(ledger, name, residency) for name, residency in (keys or {}).items()}
        port = free_port()
        cmd = [*TOLLWAY, "serve", "--config", str(config_path), "--port", str(port), "--ledger", str(ledger)]
        proc = stack.enter_context(running(cmd, f"http://127.0.0.1:{port}/healthz", log))
        yield emu, GatewayHandle(port, ledger, log, proc), secrets


def _create_key(ledger: Path, name: str, residency: str) -> str:
    done = subprocess.run([*TOLLWAY, "keys", "--ledger", str(ledger), "create", "--name", name, "--residency", residency,
                           "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)["secret"]


def provider(dialect: str, jurisdiction: str, kind: str | None = None, **extra: Any) -> dict:
    return {"kind": kind or dialect, "dialect": dialect, "base_url": f"EMU/{dialect}/v1", "jurisdiction": jurisdiction,
            "timeouts": FAST_TIMEOUTS, **extra}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")

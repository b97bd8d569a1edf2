"""Route tables for the routing unit tests: built from config dicts, no processes, no secrets."""

from __future__ import annotations

import random
from typing import Any

from multidict import CIMultiDict

from tollway.accounting.admission import Key
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.catalog import Catalog
from tollway.config import Config
from tollway.core.request import parse_request
from tollway.routing.planner import Decision, Planner
from tollway.routing.table import RouteTable

import orjson

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

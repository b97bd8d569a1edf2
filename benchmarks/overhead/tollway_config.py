"""tollway configured the way a team would run it, with every feature that exists switched on.

The base config is what every tollway supports: a static client key, two priced deployments in one route
group (priority failover, a circuit breaker each), the SQLite ledger. Features that landed later (team
and deployment RPM/TPM limits, budgets, metrics, the admin API) are *probes*: config fragments tried
against tollway's own config loader, kept when it accepts them and listed as "not yet supported" in the
report when it does not. Once tollway is up, the load's key is a virtual key created through the admin
API (with its own limits and budgets) when that works. So the benchmark keeps working while the gateway
grows and picks each feature up as it lands.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CLIENT_KEY_ENV = "BENCH_CLIENT_KEY"
UPSTREAM_KEY_ENV = "BENCH_UPSTREAM_KEY"
CLIENT_KEY = "sk-bench-client-0001"
ADMIN_KEY_ENV = "BENCH_ADMIN_KEY"
ADMIN_KEY = "sk-bench-admin-0001"


@dataclass(frozen=True)
class FeatureProbe:
    """One feature: the config it needs, merged into the base config, and what it is called in the report."""

    name: str
    fragment: dict[str, Any]


# Shapes follow the config sections their owners document (docs/budgets.md, docs/observability.md); a probe
# whose shape is rejected is reported, never silently dropped. Limits are far above the load: the benchmark
# measures what checking them costs, not refusals.
PROBES = (
    FeatureProbe("admin API (creates the virtual key)", {"server": {"admin_key_env": ADMIN_KEY_ENV}}),
    FeatureProbe("team RPM/TPM limits and daily + monthly budgets", {
        "teams": {"bench": {"rpm": 100_000_000, "tpm": 10_000_000_000, "daily_usd": "100000",
                            "monthly_usd": "1000000"}},
    }),
    FeatureProbe("deployment RPM/TPM pacing", {
        "limits": {"deployments": {name: {"rpm": 100_000_000, "tpm": 10_000_000_000}
                                   for name in ("primary-mini", "secondary-chat")}},
    }),
    FeatureProbe("metrics (Prometheus /metrics)", {"observe": {"metrics": {"enabled": True}}}),
)
# The translation rows (translation_rows.py): an Anthropic deployment on the fake upstream, and groups that
# send /v1/messages and /v1/responses each way (natively, or translated through Chat Completions). Tried like
# a probe, so a revision without these dialects is still measured on the chat path.
TRANSLATION_PROBE = FeatureProbe("translation rows (an Anthropic deployment; groups claude and ds)", {
    "providers": {"claude": {"kind": "anthropic", "base_url": "{upstream}/anthropic/v1",
                             "api_key_env": UPSTREAM_KEY_ENV, "jurisdiction": "us"}},
    "deployments": {"claude-bench": {"provider": "claude", "model": "fake-claude", "context_window": 200000,
                                     "max_output": 4096,
                                     "price": {"input": "3.00", "output": "15.00", "cached_input": "0.30"}}},
    "route_groups": {"claude": {"deployments": ["claude-bench"]}, "ds": {"deployments": ["secondary-chat"]}},
})
VIRTUAL_KEY = {"name": "bench", "team": "bench", "rpm": 100_000_000, "tpm": 10_000_000_000,
               "daily_usd": "100000", "monthly_usd": "1000000"}


@dataclass
class TollwayConfig:
    path: Path
    env: dict[str, str]
    features_on: list[str]
    features_missing: list[str] = field(default_factory=list)


def base_config(upstream_base: str) -> dict[str, Any]:
    timeouts = {"connect_s": 2, "first_byte_s": 30, "between_chunks_s": 30, "response_s": 60}
    return {
        "server": {"api_keys_env": [CLIENT_KEY_ENV]},
        "retry": {"max_attempts": 3, "retries_per_deployment": 1},
        "breaker": {"consecutive_failures": 5, "error_rate": 0.5, "window": 20, "open_s": 10},
        "ledger": {"flush_interval_s": 0.25, "batch_size": 1000},
        "providers": {
            "primary": {"kind": "openai", "base_url": f"{upstream_base}/v1", "api_key_env": UPSTREAM_KEY_ENV,
                        "jurisdiction": "us", "timeouts": timeouts},
            "secondary": {"kind": "deepseek", "base_url": f"{upstream_base}/v1", "api_key_env": UPSTREAM_KEY_ENV,
                          "jurisdiction": "cn", "timeouts": timeouts},
        },
        "deployments": {
            "primary-mini": {"provider": "primary", "model": "gpt-4o-mini", "context_window": 128000,
                             "price": {"input": "0.15", "output": "0.60", "cached_input": "0.075"}},
            "secondary-chat": {"provider": "secondary", "model": "deepseek-chat", "context_window": 64000,
                               "price": {"input": "0.27", "output": "1.10", "cached_input": "0.07"}},
        },
        "route_groups": {"chat": {"deployments": ["primary-mini", "secondary-chat"], "aliases": ["gpt-4o-mini"]}},
    }


BASE_FEATURES = ["client key check", "two-deployment route group (priority + failover)",
                 "circuit breakers", "exact cost per request", "SQLite ledger (batched)"]


def _merge(into: dict, fragment: dict) -> dict:
    out = copy.deepcopy(into)
    for key, value in fragment.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _accepted(config: dict, path: Path, env: dict[str, str]) -> str | None:
    """None if tollway's loader accepts the config, else its error lines."""
    from tollway.config import ConfigError, load_config

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        load_config(path)
        return None
    except ConfigError as exc:
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        return "; ".join(lines) or str(exc)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_config(upstream_base: str, upstream_key: str, work: Path, tollway_src: Path | None = None) -> TollwayConfig:
    """The richest config the tollway that will be served accepts, written to work/tollway.yaml.

    The probing runs in a child process importing tollway from `tollway_src` (a checked-out revision) when
    given, else the installed package: the loader that judges the config is the one that will serve it.
    """
    env = {"PYTHONPATH": os.pathsep.join(str(p) for p in (tollway_src, HERE) if p)}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), upstream_base, upstream_key, str(work)],
                          check=False, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"probing tollway's config failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return TollwayConfig(Path(data["path"]), data["env"], data["features_on"], data["features_missing"])


def _probe(upstream_base: str, upstream_key: str, work: Path) -> TollwayConfig:
    env = {CLIENT_KEY_ENV: CLIENT_KEY, UPSTREAM_KEY_ENV: upstream_key, ADMIN_KEY_ENV: ADMIN_KEY}
    path = work / "tollway.yaml"
    config = base_config(upstream_base)
    problem = _accepted(config, path, env)
    if problem:
        raise RuntimeError(f"tollway rejected the benchmark's base config ({path}): {problem}")
    on, missing = list(BASE_FEATURES), []
    translation = FeatureProbe(TRANSLATION_PROBE.name, json.loads(
        json.dumps(TRANSLATION_PROBE.fragment).replace("{upstream}", upstream_base)))
    for probe in (*PROBES, translation):
        candidate = _merge(config, probe.fragment)
        problem = _accepted(candidate, path, env)
        if problem is None:
            config = candidate
            on.append(probe.name)
        else:
            missing.append(f"{probe.name}: not yet supported ({problem})")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return TollwayConfig(path, env, on, missing)


if __name__ == "__main__":  # the child process of write_config
    result = _probe(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
    print(json.dumps({"path": str(result.path), "env": result.env, "features_on": result.features_on,
                      "features_missing": result.features_missing}))


def create_virtual_key(base: str) -> tuple[str | None, str]:
    """Create the client's virtual key (team, limits, budgets) through the admin API.

    Returns (secret, "") or (None, why not); the load then uses the static client key instead.
    """
    request = urllib.request.Request(f"{base}/admin/keys", data=json.dumps(VIRTUAL_KEY).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return None, f"POST /admin/keys answered {exc.code}: {exc.read()[:300].decode(errors='replace')}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"POST /admin/keys failed: {exc}"
    secret = answer.get("secret") if isinstance(answer, dict) else None
    return (secret, "") if secret else (None, f"POST /admin/keys gave no secret: {str(answer)[:300]}")

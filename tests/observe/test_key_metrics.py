"""The provider keys' series on /metrics (observe/key_metrics.py): labelled by fingerprint, never by the
key, in one process and summed per worker under `--workers N`."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from tollway.config import Config
from tollway.observe.key_metrics import key_families
from tollway.observe.metrics import GatewayMetrics, _fleet_gauges
from tollway.observe.settings import MetricsSettings
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.table import RouteTable

SECRETS = {"KM_A": "sk-metrics-secret-aaaa", "KM_B": "sk-metrics-secret-bbbb"}


class Families:
    def __init__(self, families) -> None:
        self.families = list(families)

    def collect(self):
        return self.families


def text(families) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(families))
    return generate_latest(registry).decode()


def table(monkeypatch) -> RouteTable:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return RouteTable(Config.model_validate({
        "providers": {"ds": {"kind": "deepseek", "base_url": "http://127.0.0.1:1/v1", "api_key_envs": list(SECRETS)},
                      "local": {"kind": "vllm", "base_url": "http://127.0.0.1:2/v1"}},
        "deployments": {"a": {"provider": "ds", "model": "a"}, "b": {"provider": "ds", "model": "b"},
                        "l": {"provider": "local", "model": "l"}},
        "route_groups": {"g": {"deployments": ["a", "b", "l"]}}}))


def test_each_key_once_per_provider_by_fingerprint(monkeypatch):
    routes = table(monkeypatch)
    ring = routes.key_rings["ds"]
    first, second = ring.keys
    ring.failed(ring.pick(), Failure(FailureKind.UPSTREAM_AUTH, "revoked", 401))
    ring.pick()
    scraped = text(GatewayMetrics(MetricsSettings(), routes.deployments).collect())
    assert f'tollway_upstream_key_state{{key="{first.label}",provider="ds",state="open"}} 1.0' in scraped
    assert f'tollway_upstream_key_state{{key="{second.label}",provider="ds",state="closed"}} 1.0' in scraped
    assert f'tollway_upstream_key_opened_total{{key="{first.label}",provider="ds"}} 1.0' in scraped
    assert f'tollway_upstream_key_attempts_total{{key="{second.label}",provider="ds"}} 1.0' in scraped
    assert scraped.count("tollway_upstream_key_attempts_total{") == 2, "two deployments share one ring"
    assert "sk-metrics" not in scraped


def test_under_workers_each_workers_keys_carry_its_pid(monkeypatch):
    routes = table(monkeypatch)
    ring = routes.key_rings["ds"]
    ring.pick()
    snapshot = orjson.loads(orjson.dumps(GatewayMetrics(MetricsSettings(), routes.deployments).gauge_snapshot()))
    scraped = text(_fleet_gauges([("101", snapshot), ("102", snapshot)]))
    label = ring.keys[0].label
    for worker in ("101", "102"):
        assert (f'tollway_upstream_key_attempts_total{{key="{label}",provider="ds",worker="{worker}"}} 1.0'
                in scraped)
    assert "sk-metrics" not in scraped + str(snapshot)


def test_no_keys_no_series():
    assert list(key_families([(None, [])])) == []

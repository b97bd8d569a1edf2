"""Route-group and deployment settings: every mistake names the key path, and the table fills catalog facts."""

import pytest
import yaml

from tests.routing.support import DEPLOYMENTS, PROVIDERS, table
from tollway.catalog import Catalog
from tollway.config import ConfigError, load_config
from tollway.routing.table import RouteTable


def load(tmp_path, groups, deployments=None):
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump({"providers": PROVIDERS, "deployments": deployments or DEPLOYMENTS,
                                    "route_groups": groups}))
    return load_config(path)[0]


@pytest.mark.parametrize("group, message", [
    ({"deployments": ["cheap-text"], "weights": {"cheap-text": 1}},
     "route_groups.g: weights only applies to strategy: weighted (this group's strategy is priority)"),
    ({"deployments": ["cheap-text"], "strategy": "weighted"}, "strategy: weighted needs `weights`"),
    ({"deployments": ["cheap-text"], "strategy": "weighted", "weights": {"vision-mid": 1}},
     "weights: ['vision-mid'] are not deployments of this group (cheap-text)"),
    ({"deployments": ["cheap-text"], "strategy": "weighted", "weights": {"cheap-text": 0}},
     "at least one must be above 0"),
    ({"deployments": ["cheap-text"], "strategy": "tiers"}, "strategy: tiers needs `tiers`"),
    ({"deployments": ["cheap-text"], "strategy": "tiers", "tiers": {"high": ["long-big"]}},
     "tiers.high: ['long-big'] must name deployments of this group (cheap-text)"),
    ({"deployments": ["cheap-text"], "strategy": "tiers", "tiers": {"urgent": ["cheap-text"]}}, "route_groups.g.tiers.urgent"),
    ({"deployments": ["cheap-text"], "strategy": "cheapest", "slo_p99_ttft_ms": 500},
     "slo_p99_ttft_ms only applies to strategy: fastest"),
    ({"deployments": ["cheap-text"], "strategy": "quickest"}, "route_groups.g.strategy: Input should be 'priority'"),
    ({"deployments": ["cheap-text"], "residency": []}, "list at least one jurisdiction"),
    ({"deployments": ["cheap-text"], "prefer_strong_in": {"fr": 0.2}}, "'fr' cannot be recognised in a request"),
    ({"deployments": ["cheap-text"], "prefer_strong_in": {"zh": 1.5}}, "zh: weight 1.5 must be at least 0 and below 1"),
    ({"deployments": ["cheap-text"], "strategy": "tiers", "tiers": {"low": ["cheap-text"]},
      "complexity": {"classifier": "model"}}, "classifier: model needs `deployment`"),
    ({"deployments": ["cheap-text"], "complexity": {"medium_at": 0.8, "high_at": 0.5}},
     "medium_at (0.8) must not be above high_at (0.5)"),
    ({"deployments": ["cheap-text"], "hedge": {"budget_percent": 0}}, "route_groups.g.hedge.budget_percent"),
    ({"deployments": ["cheap-text"], "shadow": {"deployment": "x", "sample": 2}}, "route_groups.g.shadow.sample"),
    ({"deployments": ["cheap-text"], "spillover": {"kv_cache_above": 1.5}}, "route_groups.g.spillover.kv_cache_above"),
])
def test_group_mistakes_name_the_key_path(tmp_path, group, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"g": group})
    assert message in str(caught.value)
    assert str(tmp_path / "tollway.yaml") in str(caught.value)


def test_references_to_unknown_deployments_are_config_errors():
    with pytest.raises(ConfigError, match=r"route_groups.g.shadow.deployment: no deployment named 'nope'"):
        table({"g": {"deployments": ["cheap-text"], "shadow": {"deployment": "nope"}}})
    with pytest.raises(ConfigError, match=r"route_groups.g.complexity.deployment: no deployment named 'grader'"):
        table({"g": {"deployments": ["cheap-text"], "strategy": "tiers", "tiers": {"low": ["cheap-text"]},
                     "complexity": {"classifier": "model", "deployment": "grader"}}})


def test_metrics_url_must_be_http(tmp_path):
    with pytest.raises(ConfigError, match="deployments.local-vllm.metrics_url: metrics_url 'ftp://x' must start with http"):
        load(tmp_path, {"g": {"deployments": ["local-vllm"]}},
             {**DEPLOYMENTS, "local-vllm": {**DEPLOYMENTS["local-vllm"], "metrics_url": "ftp://x"}})


def test_the_catalog_fills_what_the_config_leaves_out(tmp_path):
    config = load(tmp_path, {"g": {"deployments": ["ds", "ds-small", "qw"]}}, {
        "ds": {"provider": "deepseek", "model": "deepseek-flash"},
        "ds-small": {"provider": "deepseek", "model": "deepseek-flash", "context_window": 4000, "capabilities": ["tools"],
                     "strong_in": []},
        "qw": {"provider": "qwen", "model": "qwen3.5-plus"},
    })
    tbl = RouteTable(config, Catalog.load(), resolve_secrets=False)
    ds, small, qw = (tbl.deployments[n] for n in ("ds", "ds-small", "qw"))
    assert ds.context_window == 1000000 and ds.capabilities == {"vision", "tools", "json", "reasoning"}
    assert ds.strong_in == {"zh", "code"} and ds.capabilities_known
    assert small.context_window == 4000 and small.capabilities == {"tools"} and small.strong_in == frozenset()
    assert qw.strong_in == {"zh"} and not qw.capabilities_known  # the catalog lists none: unknown, not "none"
    assert qw.context_window == 8192
    without_catalog = RouteTable(config, None, resolve_secrets=False)
    assert without_catalog.deployments["ds"].context_window == 8192


def test_self_hosted_metrics_url_defaults_next_to_v1():
    tbl = table({"g": {"deployments": ["local-vllm"]}})
    assert tbl.deployments["local-vllm"].metrics_url() == "http://127.0.0.1:9/vllm/metrics"
    assert tbl.deployments["local-vllm"].self_hosted and not tbl.deployments["cheap-text"].self_hosted


def test_a_grading_deployment_is_only_asked_with_classifier_model():
    heuristic = table({"g": {"deployments": ["cheap-text"], "strategy": "tiers", "tiers": {"low": ["cheap-text"]},
                             "complexity": {"deployment": "vision-mid"}}})
    assert heuristic.groups["g"].classifier is None
    model = table({"g": {"deployments": ["cheap-text"], "strategy": "tiers", "tiers": {"low": ["cheap-text"]},
                         "complexity": {"classifier": "model", "deployment": "vision-mid"}}})
    assert model.groups["g"].classifier is model.deployments["vision-mid"]

"""Admission's config sections: defaults change nothing, and mistakes name the key path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tollway.config import ConfigError, load_config

BASE = {
    "providers": {"p": {"kind": "vllm", "base_url": "http://127.0.0.1:1/v1"}},
    "deployments": {"a": {"provider": "p", "model": "m"}, "b": {"provider": "p", "model": "n"}},
    "route_groups": {"chat": {"deployments": ["a", "b"]}, "cheap": {"deployments": ["b"]}},
}


def load(tmp_path: Path, **sections):
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump({**BASE, **sections}))
    return load_config(path)[0]


def test_defaults_need_no_redis_no_database_and_no_keys(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert (config.redis_url, config.database_url, config.on_redis_failure) == (None, None, "closed")
    assert config.keys.required == "auto" and config.keys.refresh_ms == 250
    assert str(config.budgets.soft_threshold) == "0.8" and config.budgets.brownout == {}


def test_a_full_admission_config_loads(tmp_path: Path) -> None:
    config = load(tmp_path, redis_url="redis://:secret@cache:6379/0", database_url="postgresql://gw@db/tollway",
                  on_redis_failure="open", teams={"ml": {"rpm": 100, "daily_usd": "50", "monthly_usd": "900"}},
                  limits={"deployments": {"a": {"rpm": 60, "tpm": 100000}}},
                  budgets={"soft_threshold": "0.9", "brownout": {"chat": "cheap"}, "daily_reset_hour_utc": 8})
    assert str(config.teams["ml"].daily_usd) == "50"
    assert config.limits.deployments["a"].tpm == 100000 and config.budgets.brownout == {"chat": "cheap"}


def test_budget_lists_and_the_older_daily_and_monthly_fields_are_one_list(tmp_path: Path) -> None:
    config = load(tmp_path, teams={"ml": {"daily_usd": "50", "budgets": [
                      {"window": "week", "limit_usd": "200"}, {"window": "hour", "limit_usd": "1", "model": "chat"},
                      {"window": "day", "limit_usd": "2", "per_user": True}]}},
                  budgets={"org": [{"window": "monthly", "limit_usd": "5000"}]})
    assert [e.text() for e in config.teams["ml"].entries()] == ["day=50", "week=200", "hour=1@chat", "user:day=2"]
    assert [e.text() for e in (s.entry() for s in config.budgets.org)] == ["month=5000"]


@pytest.mark.parametrize("sections, message", [
    ({"redis_url": "localhost:6379"}, "redis_url 'localhost:6379' must start with redis://"),
    ({"database_url": "sqlite:///x.db"}, "database_url 'sqlite:///x.db' must start with postgresql://"),
    ({"database_url": "mysql://u:hunter2@db/x"}, "'mysql://u:***@db/x'"),
    ({"on_redis_failure": "maybe"}, "on_redis_failure: Input should be 'closed' or 'open'"),
    ({"limits": {"deployments": {"zz": {"rpm": 5}}}}, "limits.deployments.zz: no deployment named 'zz'"),
    ({"limits": {"deployments": {"a": {"rpm": 0}}}}, "limits.deployments.a.rpm: Input should be greater than or equal to 1"),
    ({"budgets": {"brownout": {"chat": "nope"}}}, "budgets.brownout.chat: no route group named 'nope'"),
    ({"budgets": {"brownout": {"nope": "cheap"}}}, "budgets.brownout: no route group named 'nope'"),
    ({"budgets": {"soft_threshold": 1.5}}, "budgets.soft_threshold: Input should be less than or equal to 1"),
    ({"teams": {"ml": {"daily_usd": "-3"}}}, "teams.ml.daily_usd: Input should be greater than 0"),
    ({"teams": {"ml": {"monthly_usd": "1e7"}}}, "teams.ml.monthly_usd: Input should be less than or equal to 9007199"),
    ({"keys": {"required": "yes"}}, "keys.required: Input should be 'auto', 'always' or 'never'"),
    ({"teams": {"ml": {"rpn": 5}}}, "teams.ml.rpn: unknown key"),
    ({"teams": {"ml": {"budgets": [{"window": "fortnight", "limit_usd": "5"}]}}},
     "teams.ml.budgets.0.window: unknown window 'fortnight'; use hour, day, week or month"),
    ({"teams": {"ml": {"budgets": [{"window": "day", "limit_usd": "0"}]}}},
     "teams.ml.budgets.0.limit_usd: Input should be greater than 0"),
    ({"budgets": {"org": [{"window": "day", "limit_usd": "5", "model": "gpt-9"}]}},
     "budgets.org[0].model: no model 'gpt-9' in the config (models: chat, cheap)"),
    ({"teams": {"ml": {"budgets": [{"window": "day", "limit_usd": "5"}, {"window": "daily", "limit_usd": "6"}]}}},
     "teams.ml.budgets[1]: a second day budget; give each window one limit"),
])
def test_mistakes_name_the_key_path(tmp_path: Path, sections: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **sections)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value), "a password in a URL is never echoed"

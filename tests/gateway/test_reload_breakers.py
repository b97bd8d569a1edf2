"""Which breakers a reload keeps: an unchanged deployment's, never a changed one's (gateway/reload.py)."""

from __future__ import annotations

from tollway.config import Config
from tollway.gateway.reload import carry_breakers
from tollway.routing.table import RouteTable


def config(flash_model: str = "deepseek-chat", open_s: float = 1.0) -> Config:
    return Config.model_validate({
        "breaker": {"open_s": open_s},
        "providers": {"deepseek": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"flash": {"provider": "deepseek", "model": flash_model},
                        "pro": {"provider": "deepseek", "model": "deepseek-reasoner"}},
        "route_groups": {"chat": {"deployments": ["flash", "pro"]}},
    })


def tables(old: Config, new: Config) -> tuple[RouteTable, RouteTable]:
    before, after = RouteTable(old, resolve_secrets=False), RouteTable(new, resolve_secrets=False)
    carry_breakers(old, before, new, after)
    return before, after


def test_an_unchanged_deployment_keeps_its_breaker_and_a_changed_one_starts_afresh() -> None:
    before, after = tables(config(), config(flash_model="deepseek-v4-flash"))
    assert after.deployments["pro"].breaker is before.deployments["pro"].breaker
    assert after.deployments["pro"].stats is before.deployments["pro"].stats
    assert after.deployments["flash"].breaker is not before.deployments["flash"].breaker


def test_new_breaker_settings_give_every_deployment_a_new_breaker() -> None:
    before, after = tables(config(), config(open_s=5.0))
    assert all(after.deployments[n].breaker is not before.deployments[n].breaker for n in ("flash", "pro"))

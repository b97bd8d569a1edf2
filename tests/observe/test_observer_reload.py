"""A reloaded route table reaches the observer: its gauges show the new deployments and their secrets
are kept out of logs like the first ones."""

from __future__ import annotations

import logging

from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.observe import logs
from tollway.observe.observer import Observer
from tollway.routing.table import RouteTable


def config(*providers: str) -> Config:
    return Config.model_validate({
        "providers": {p: {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1", "api_key_env": f"{p.upper()}_KEY"}
                      for p in providers},
        "deployments": {f"{p}-dep": {"provider": p, "model": "deepseek-chat"} for p in providers},
        "route_groups": {"chat": {"deployments": [f"{p}-dep" for p in providers]}},
    })


def parts(cfg: Config) -> tuple[RouteTable, DeploymentPricer]:
    pricer = DeploymentPricer(Catalog.from_config_section({"catalog": cfg.catalog, "cny_per_usd": cfg.cny_per_usd}))
    return RouteTable(cfg, pricer.catalog), pricer


def test_a_reloaded_table_is_shown_and_its_secrets_redacted(monkeypatch, caplog) -> None:
    monkeypatch.setenv("FIRST_KEY", "sk-first-secret-0001")
    monkeypatch.setenv("SECOND_KEY", "sk-second-secret-0002")
    first = config("first")
    made = Observer(first.observe, first.server, *parts(first), admission=None, ledger=None)
    made._redactor = logs.SecretRedactor(made._secrets)
    made.take_table(*parts(config("first", "second")))
    assert sorted(made.metrics.deployments) == ["first-dep", "second-dep"]
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "keys %s %s", ("sk-first-secret-0001",
                                                                          "sk-second-secret-0002"), None)
    made._redactor.filter(record)
    assert "secret" not in record.getMessage()

"""The observer is built from the parts it reads (no gateway), and sums the exact cost each row is handed
with: the Decimal the row's text was made from, never the text parsed back."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.observe.support import row
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.observe.observer import Observer
from tollway.routing.table import RouteTable

ROUTE = ("chat", "ds-flash", "deepseek")


def observer(in_flight: int = 0) -> Observer:
    config = Config.model_validate({
        "providers": {"deepseek": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"ds-flash": {"provider": "deepseek", "model": "deepseek-chat"}},
        "route_groups": {"chat": {"deployments": ["ds-flash"]}},
    })
    pricer = DeploymentPricer(Catalog.from_config_section({"catalog": config.catalog, "cny_per_usd": config.cny_per_usd}))
    made = Observer(config.observe, config.server, RouteTable(config, resolve_secrets=False), pricer,
                    admission=None, ledger=None, in_flight=lambda: in_flight)
    made._held = None  # history loading is start()'s business
    return made


def samples(made: Observer) -> dict[tuple[str, tuple], float]:
    text = generate_latest(made._registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_costs_handed_with_rows_sum_exactly_into_every_figure() -> None:
    made = observer()
    costs = [Decimal("0.000000001"), Decimal("0.1"), Decimal("0.2")]
    for n, cost in enumerate(costs):
        made.record(row(f"r{n}", "2026-11-23T10:00:00+00:00", cost=str(cost), prompt=10, completion=5,
                        latency=3.0), cost)
    assert made.drain() == 0
    assert made.metrics.cost[ROUTE] == Decimal("0.300000001")  # not 0.30000000100000004
    [model] = made.dashboard_data()["models"]
    assert model["cost_usd"] == "0.300000001"


def test_the_cost_counted_is_the_one_handed_over_not_the_rows_text_parsed_again() -> None:
    made = observer()
    made.record(row("r", "2026-11-23T10:00:00+00:00", cost="not parsed"), Decimal("0.25"))
    assert made.drain() == 0
    assert made.metrics.cost[ROUTE] == Decimal("0.25")


def test_gauges_read_the_parts_the_observer_was_given() -> None:
    made = observer(in_flight=3)
    got = samples(made)
    assert got[("tollway_in_flight_requests", ())] == 3
    assert got[("tollway_breaker_state", (("deployment", "ds-flash"), ("provider", "deepseek"), ("state", "closed")))] == 1
    assert not any(name.startswith("tollway_ledger") for name, _ in got), "no ledger given: no ledger gauges"
    assert made.dashboard_data()["in_flight"] == 3

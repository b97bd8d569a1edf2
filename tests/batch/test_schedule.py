"""The planner on the built-in catalog: DeepSeek's lines wait for its off-peak hours inside the window,
a native-capable deployment takes the batch rate, a window the schedule cannot meet is refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tollway.batch.schedule import PlanLimits, plan_batch
from tollway.batch.types import BatchLine
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.routing.table import RouteTable

TUESDAY = datetime(2026, 12, 8, tzinfo=timezone.utc)  # not a Chinese holiday


@pytest.fixture(scope="module")
def setup() -> tuple[RouteTable, DeploymentPricer]:
    config = Config.model_validate({
        "providers": {"deepseek": {"kind": "deepseek", "base_url": "https://api.deepseek.com/v1"},
                      "anthropic": {"kind": "anthropic", "base_url": "https://api.anthropic.com/v1"},
                      "kimi": {"kind": "kimi", "base_url": "https://api.moonshot.ai/v1"}},
        "deployments": {"ds": {"provider": "deepseek", "model": "deepseek-flash"},
                        "claude": {"provider": "anthropic", "model": "claude-fable-5.1"},
                        "kimi": {"provider": "kimi", "model": "kimi-k2.5"}},
        "route_groups": {"chat": {"deployments": ["ds"]}, "claude": {"deployments": ["claude"]},
                         "kimi": {"deployments": ["kimi"]}},
    })
    pricer = DeploymentPricer(Catalog.load())
    return RouteTable(config, pricer.catalog, resolve_secrets=False), pricer


def _lines(model: str, count: int = 2) -> list[BatchLine]:
    return [BatchLine(i, f"l{i}", "/v1/chat/completions", model,
                      {"model": model, "messages": [{"role": "user", "content": "Summarise this text " * 20}],
                       "max_tokens": 100}) for i in range(count)]


def test_deepseek_lines_wait_for_off_peak_and_cost_half(setup):
    table, pricer = setup
    now = TUESDAY.replace(hour=2, minute=7)  # 10:07 Beijing: peak until 12:00
    plan = plan_batch(_lines("chat"), table, pricer, now, "24h")
    assert plan.feasible
    assert {(p.mode, p.rate, p.not_before) for p in plan.lines} == {
        ("scheduled", "off_peak", TUESDAY.replace(hour=4))}
    assert plan.expected_cost_usd * 2 == plan.cost_now_usd > 0
    assert plan.deadline == now + timedelta(hours=24)
    assert plan.worst_case_usd > plan.cost_now_usd


def test_lines_already_off_peak_go_now(setup):
    table, pricer = setup
    now = TUESDAY.replace(hour=13)  # 21:00 Beijing
    plan = plan_batch(_lines("chat"), table, pricer, now, "24h")
    assert {(p.rate, p.not_before) for p in plan.lines} == {("off_peak", now)}
    assert plan.expected_cost_usd == plan.cost_now_usd


def test_a_window_that_ends_before_off_peak_sends_at_the_standard_rate(setup):
    table, pricer = setup
    now = TUESDAY.replace(hour=1, minute=30)  # 09:30 Beijing; a 2h window ends at 11:30, still peak
    plan = plan_batch(_lines("chat"), table, pricer, now, "2h")
    assert {(p.rate, p.not_before) for p in plan.lines} == {("standard", now)}


def test_the_off_peak_start_must_leave_time_to_run_every_line(setup):
    table, pricer = setup
    now = TUESDAY.replace(hour=1, minute=30)  # off-peak begins in 2h30m; a 3h window leaves 30 minutes
    limits = PlanLimits(concurrency=1, line_estimate_s=1200)  # two lines need 40 minutes
    plan = plan_batch(_lines("chat"), table, pricer, now, "3h", limits=limits)
    assert {p.rate for p in plan.lines} == {"standard"}
    roomy = plan_batch(_lines("chat"), table, pricer, now, "3h", limits=PlanLimits(concurrency=2,
                                                                                   line_estimate_s=1200))
    assert {p.rate for p in roomy.lines} == {"off_peak"}


def test_a_native_deployment_takes_the_catalog_batch_rate(setup):
    table, pricer = setup
    now = TUESDAY.replace(hour=9)
    plan = plan_batch(_lines("claude"), table, pricer, now, "24h", native=lambda dep, endpoint: dep.name == "claude")
    assert {(p.mode, p.rate, p.deployment) for p in plan.lines} == {("native", "batch", "claude")}
    assert plan.expected_cost_usd * 2 == plan.cost_now_usd
    longer = plan_batch(_lines("claude"), table, pricer, now, "48h", native=lambda dep, endpoint: True)
    assert {(p.mode, p.rate) for p in longer.lines} == {("scheduled", "standard")}  # native APIs take 24h


def test_a_deployment_without_time_of_day_prices_goes_now_at_the_standard_rate(setup):
    table, pricer = setup
    now = TUESDAY.replace(hour=2)
    plan = plan_batch(_lines("kimi"), table, pricer, now, "24h", native=lambda dep, endpoint: True)  # no batch tier
    assert {(p.mode, p.rate, p.not_before) for p in plan.lines} == {("scheduled", "standard", now)}


@pytest.mark.parametrize(("window", "says"), [
    ("1h", "too short for 10 lines at batch.concurrency 1"),
    ("500h", "batch.max_window_h: 168h"),
    ("1d", "not a whole number of hours"),
])
def test_a_window_the_schedule_cannot_meet_is_infeasible(setup, window, says):
    table, pricer = setup
    plan = plan_batch(_lines("chat", 10), table, pricer, TUESDAY, window,
                      limits=PlanLimits(concurrency=1, line_estimate_s=600))
    assert not plan.feasible and plan.lines == ()
    assert plan.reason.startswith("completion_window") and says in plan.reason


def test_a_given_worst_case_is_summed(setup):
    table, pricer = setup
    plan = plan_batch(_lines("chat", 3), table, pricer, TUESDAY, "24h", worst_case=lambda line: Decimal("0.25"))
    assert plan.worst_case_usd == Decimal("0.75")

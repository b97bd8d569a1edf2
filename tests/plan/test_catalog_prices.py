"""Per-token options priced from the real catalog: DeepSeek's peak/off-peak by hour of week, batch tiers,
today's model mix, unknown models."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.plan.support import MONDAY as LEDGER_MONDAY
from tests.plan.support import request, write_ledger
from tollway.catalog import Catalog
from tollway.plan.ledger_source import open_ledger
from tollway.plan.ledger_workload import workload_from_ledger
from tollway.plan.options import build_options
from tollway.plan.replay import load_candidate, replay_ledger
from tollway.plan.scenario import ScenarioError, parse_scenario
from tollway.plan.workload import ModelShare, Workload, week_weights

MONDAY = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)  # prices are read over the week of this Monday
DEEPSEEK = {"kind": "per_token", "name": "ds", "provider": "deepseek", "model": "deepseek-flash"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def flash(workload: Workload, catalog: Catalog, option: dict = DEEPSEEK):
    (priced,) = build_options(parse_scenario({"options": [option]}).options, workload, catalog, MONDAY)
    return priced


def tokens(profile) -> Workload:
    return Workload(daily_input_tokens=Decimal(100_000_000), daily_cached_tokens=Decimal(60_000_000),
                    daily_output_tokens=Decimal(10_000_000), hour_weights=week_weights(profile))


def monthly(uncached_rate: str, cached_rate: str, output_rate: str) -> Decimal:
    """USD per month for 40M uncached + 60M cached input and 10M output tokens a day at these $/M rates."""
    per_day = 40 * Decimal(uncached_rate) + 60 * Decimal(cached_rate) + 10 * Decimal(output_rate)
    return per_day * 365 / 12


def test_traffic_only_in_off_peak_hours_pays_the_off_peak_price(catalog):
    # Beijing peak is 01:00-04:00 and 06:00-10:00 UTC on weekdays; 12:00-23:59 UTC is off-peak every day
    profile = [0] * 12 + [1] * 12
    cost = flash(tokens(profile), catalog).monthly_cost(tokens(profile)).total
    assert cost == monthly("0.15", "0.003", "0.60")


def test_traffic_only_in_peak_hours_pays_the_peak_price(catalog):
    week = [0] * 168
    for day in range(5):
        for hour in (1, 2, 3, 6, 7, 8, 9):
            week[day * 24 + hour] = 1
    cost = flash(tokens(week), catalog).monthly_cost(tokens(week)).total
    assert cost == monthly("0.30", "0.006", "1.20")


def test_flat_traffic_blends_35_peak_hours_of_168(catalog):
    w = tokens(None)
    cost = flash(w, catalog).monthly_cost(w).total
    peak, off_peak = monthly("0.30", "0.006", "1.20"), monthly("0.15", "0.003", "0.60")
    expected = (peak * 35 + off_peak * 133) / 168
    assert abs(cost - expected) < Decimal("1e-20")


def test_unknown_model_is_named(catalog):
    with pytest.raises(ScenarioError) as caught:
        flash(tokens(None), catalog, {**DEEPSEEK, "model": "deepseek-imaginary-9"})
    message = str(caught.value)
    assert "options[0]" in message and "deepseek/deepseek-imaginary-9 is not in the price catalog" in message


def test_batchable_share_uses_the_catalogs_batch_tier(catalog):
    at = MONDAY
    standard = catalog.price("anthropic", "claude-sonnet-5", at)
    batch = catalog.price("anthropic", "claude-sonnet-5", at, tier="batch")
    assert standard is not None and batch is not None and batch.input < standard.input
    w = Workload(daily_input_tokens=Decimal(2_000_000), daily_output_tokens=Decimal(1_000_000),
                 batchable_share=Decimal("0.25"))
    option = {"kind": "per_token", "name": "sonnet", "provider": "anthropic", "model": "claude-sonnet-5"}
    cost = flash(w, catalog, option).monthly_cost(w).total
    def per_day(p):
        return 2 * p.input + 1 * p.output
    expected = (per_day(standard) * Decimal("0.75") + per_day(batch) * Decimal("0.25")) * 365 / 12
    assert abs(cost - expected) < Decimal("1e-20")


def test_an_explicit_batch_discount_overrides_the_catalog(catalog):
    w = Workload(daily_input_tokens=Decimal(1_000_000), daily_output_tokens=Decimal(0), batchable_share=Decimal(1),
                 hour_weights=week_weights([0] * 12 + [1] * 12))
    cost = flash(w, catalog, {**DEEPSEEK, "batch_discount": "0.5"}).monthly_cost(w).total
    assert cost == Decimal("0.15") / 2 * 365 / 12


def test_workload_mix_prices_each_model_at_its_own_rates(catalog):
    mix = (ModelShare("anthropic", "claude-sonnet-5", Decimal(3_000_000), Decimal(1_000_000), Decimal(0),
                      Decimal(500_000), Decimal(100)),
           ModelShare("openai", "gpt-5.5", Decimal(1_000_000), Decimal(0), Decimal(0), Decimal(250_000), Decimal(10)))
    w = Workload(daily_input_tokens=Decimal(4_000_000), daily_cached_tokens=Decimal(1_000_000),
                 daily_output_tokens=Decimal(750_000), model_mix=mix)
    option = {"kind": "per_token", "name": "today", "use_workload_mix": True}
    cost = flash(w, catalog, option).monthly_cost(w).total
    sonnet = catalog.price("anthropic", "claude-sonnet-5", MONDAY)
    gpt = catalog.price("openai", "gpt-5.5", MONDAY)
    per_day = (2 * sonnet.input + 1 * sonnet.cached_input + Decimal("0.5") * sonnet.output
               + 1 * gpt.input + Decimal("0.25") * gpt.output)
    assert abs(cost - per_day * 365 / 12) < Decimal("1e-18")


def test_workload_mix_needs_a_mix():
    w = Workload(daily_input_tokens=Decimal(1), daily_output_tokens=Decimal(1))
    with pytest.raises(ScenarioError, match="use_workload_mix needs a workload with a model mix"):
        flash(w, Catalog.load(), {"kind": "per_token", "name": "today", "use_workload_mix": True})


def test_a_ledger_whose_traffic_is_all_off_peak_prices_at_the_off_peak_rate(tmp_path, catalog):
    """The ledger's real hourly shape meets DeepSeek's Beijing peak hours: evening-only traffic is off-peak."""
    rows = [request(n, LEDGER_MONDAY + timedelta(days=day, hours=hour), prompt=1000, cached=600, cache_write=0,
                    completion=100)
            for n, (day, hour) in enumerate((d, h) for d in range(14) for h in range(12, 24))]
    w = workload_from_ledger(open_ledger(str(write_ledger(tmp_path / "ledger.db", rows))))
    cost = flash(w, catalog).monthly_cost(w).total
    # 12 requests a day: 4,800 uncached + 7,200 cached input and 1,200 output tokens, all at off-peak rates
    per_day = (4800 * Decimal("0.15") + 7200 * Decimal("0.003") + 1200 * Decimal("0.60")) / 1_000_000
    assert cost == per_day * 365 / 12
    # the same tokens spread over the whole day would pay more: some land in peak hours
    flat = Workload(daily_input_tokens=w.daily_input_tokens, daily_cached_tokens=w.daily_cached_tokens,
                    daily_output_tokens=w.daily_output_tokens)
    assert flash(flat, catalog).monthly_cost(flat).total > cost


def test_a_2025_deepseek_ledger_replays_at_2025_prices(tmp_path):
    """deepseek-chat rows of June 2025, one in standard hours and one in the night discount, replay at the
    prices then in force (not at V4-Flash's 2026 price): 600 miss + 400 hit + 200 out each."""
    day = datetime(2025, 6, 10, tzinfo=timezone.utc)
    rows = [request(1, day + timedelta(hours=8), prompt=1000, cached=400, cache_write=0, completion=200,
                    model="deepseek-chat"),
            request(2, day + timedelta(hours=20), prompt=1000, cached=400, cache_write=0, completion=200,
                    model="deepseek-chat")]
    ledger = write_ledger(tmp_path / "ledger.db", rows)
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(
        "providers: {deepseek: {kind: deepseek, base_url: 'https://api.deepseek.com', jurisdiction: cn}}\n"
        "deployments: {ds: {provider: deepseek, model: deepseek-chat, context_window: 64000}}\n"
        "route_groups: {deepseek-chat: {deployments: [ds]}}\n")
    totals = replay_ledger(load_candidate(candidate), str(ledger))
    standard = (600 * Decimal("0.27") + 400 * Decimal("0.07") + 200 * Decimal("1.10")) / 1_000_000
    night = (600 * Decimal("0.135") + 400 * Decimal("0.035") + 200 * Decimal("0.55")) / 1_000_000
    assert totals.by_day["2025-06-10"].candidate_usd == standard + night == Decimal("0.000615")

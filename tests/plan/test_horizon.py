"""Horizons: discounting and growth against closed forms; cheapest now, projected and over each horizon."""

from datetime import datetime, timezone
from decimal import Decimal

from tollway.plan.economics import growth_factor, horizon_costs
from tollway.plan.options import build_options
from tollway.plan.planner import analyse
from tollway.plan.scenario import EconomicsSpec, parse_scenario
from tollway.plan.workload import Workload, workload_from_spec

AT = datetime(2026, 11, 23, tzinfo=timezone.utc)
FLAT_FEE = {"kind": "provisioned", "name": "flat", "reserved_tpm": 10**12, "monthly_fee": "1000"}


def priced(options, workload):
    return build_options(parse_scenario({"options": options}).options, workload, None, AT)


def test_without_discount_or_growth_a_horizon_is_months_times_the_monthly_cost():
    w = Workload(daily_input_tokens=Decimal(10**6), daily_output_tokens=Decimal(0))
    (flat,) = priced([FLAT_FEE], w)
    one, three = horizon_costs(flat, w, [1, 3], Decimal(0))
    assert (one.present_value, one.nominal) == (Decimal(12000), Decimal(12000))
    assert (three.present_value, three.nominal) == (Decimal(36000), Decimal(36000))


def test_discounting_matches_the_annuity_formula():
    # each month paid at its end, discounted at (1+r)^(-m/12): PV = C v (1 - v^n) / (1 - v), v = (1+r)^(-1/12)
    w = Workload(daily_input_tokens=Decimal(10**6), daily_output_tokens=Decimal(0))
    (flat,) = priced([FLAT_FEE], w)
    rate = Decimal("0.10")
    (five,) = horizon_costs(flat, w, [5], rate)
    v = 1 / (1 + rate) ** (Decimal(1) / 12)
    expected = Decimal(1000) * v * (1 - v ** 60) / (1 - v)
    assert abs(five.present_value - expected) < Decimal("1e-15")
    assert five.nominal == Decimal(60000)
    # a year of payments at 10% is worth a bit less than 12 x 1000 but more than 12000 / 1.10
    (one,) = horizon_costs(flat, w, [1], rate)
    assert Decimal(12000) / Decimal("1.10") < one.present_value < Decimal(12000)


def test_growth_compounds_monthly_for_per_token_costs():
    w = Workload(daily_input_tokens=Decimal(10**6), daily_output_tokens=Decimal(0), growth_per_month=Decimal("0.05"))
    (api,) = priced([{"kind": "per_token", "name": "api", "prices": {"input": "1", "output": "1"}}], w)
    month0 = api.monthly_cost(w).total
    (one,) = horizon_costs(api, w, [1], Decimal(0))
    expected = month0 * sum((Decimal("1.05") ** m for m in range(12)), Decimal(0))
    assert abs(one.nominal - expected) < Decimal("1e-18")
    assert growth_factor(Decimal("0.05"), 12) == Decimal("1.05") ** 12


def test_the_first_month_an_option_is_outgrown_is_reported_counting_from_one():
    # a reservation of 1000 tpm with no overflow; traffic 500 tpm flat, doubling every month
    w = Workload(daily_input_tokens=Decimal(720_000), daily_output_tokens=Decimal(0), growth_per_month=Decimal(1))
    (small,) = priced([{"kind": "provisioned", "name": "small", "reserved_tpm": 1000, "monthly_fee": 10}], w)
    (one,) = horizon_costs(small, w, [1], Decimal(0))
    assert one.first_unfit_month == 3  # month 1: 500 (today), month 2: 1000 (fits), month 3: 2000


def test_cheapest_now_later_and_over_horizons():
    # per-token $1/M on 1M tokens/day ~ $30/month growing 10%/month; a flat $60/month option.
    scenario = parse_scenario({
        "workload": {"daily_input_tokens": 1_000_000, "daily_output_tokens": 0, "growth_per_month": "0.10"},
        "options": [{"kind": "per_token", "name": "api", "prices": {"input": 1, "output": 1}},
                    {**FLAT_FEE, "monthly_fee": 60}],
        "economics": {"horizons_years": [1, 3], "discount_rate": 0, "projection_months": 12,
                      "pricing_at": "2026-11-23"},
    })
    result = analyse(scenario.options, workload_from_spec(scenario.workload), scenario.economics, None,
                     with_sensitivity=False)
    assert result.cheapest_now.option == "api"
    assert result.cheapest_projected.option == "flat"  # 30.4 x 1.1^12 = 95 > 60
    assert result.cheapest_by_horizon[1].option == "api"
    assert result.cheapest_by_horizon[3].option == "flat"
    (be,) = result.break_evens
    assert be.cheaper_below == "api" and be.cheaper_above == "flat"
    # $60 = s x 1M x $1/M x 365/12  =>  s = 60 x 12 / 365
    assert abs(be.scale - Decimal(720) / Decimal(365)) < Decimal("1e-20")
    assert isinstance(result.economics, EconomicsSpec)

"""Break-evens against closed forms: where a flat fee equals volume x price, and where a unit is added."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tollway.plan.economics import all_break_evens, break_evens
from tollway.plan.figures import break_even_lines, tokens
from tollway.plan.options import DAYS_PER_MONTH, build_options
from tollway.plan.planner import analyse
from tollway.plan.report_json import money
from tollway.plan.scenario import parse_scenario
from tollway.plan.workload import Workload

AT = datetime(2026, 11, 23, tzinfo=timezone.utc)  # explicit prices only: the moment does not change them


def priced(options: list[dict], workload: Workload):
    return build_options(parse_scenario({"options": options}).options, workload, None, AT)


def workload(input_tokens: int = 1_000_000, output_tokens: int = 0, peak: str = "1") -> Workload:
    return Workload(daily_input_tokens=Decimal(input_tokens), daily_output_tokens=Decimal(output_tokens),
                    peak_to_average=Decimal(peak))


def test_flat_fee_and_per_token_break_even_where_fee_equals_volume_times_price():
    fee, price = Decimal("1500"), Decimal("0.40")  # USD/month, USD per 1M input tokens
    w = workload()
    api, flat = priced([
        {"kind": "per_token", "name": "api", "prices": {"input": price, "output": "2.00"}},
        {"kind": "provisioned", "name": "flat", "reserved_tpm": 10**12, "monthly_fee": fee},
    ], w)
    found = break_evens(api, flat, w, Decimal(1000))
    assert len(found) == 1
    be = found[0]
    # fee = monthly tokens x price  =>  daily tokens = fee / (price / 1M) / days per month
    expected_daily = fee / (price / Decimal(1_000_000)) / DAYS_PER_MONTH
    assert be.daily_tokens.quantize(Decimal("0.000001")) == expected_daily.quantize(Decimal("0.000001"))
    assert be.monthly_cost.quantize(Decimal("0.000001")) == fee
    assert (be.cheaper_below, be.cheaper_above) == ("api", "flat")
    assert be.at_step is False


def test_break_even_uses_the_output_price_for_output_tokens():
    w = workload(input_tokens=3_000_000, output_tokens=1_000_000)
    api, flat = priced([
        {"kind": "per_token", "name": "api", "prices": {"input": "1", "output": "5"}},
        {"kind": "dedicated", "name": "unit", "unit_monthly_fee": "2400", "unit_tpm": 10**9, "headroom": 0},
    ], w)
    be = break_evens(api, flat, w, Decimal(100))[0]
    # per day at scale s: s * (3 * $1 + 1 * $5) = 8 s USD; per month 8 s * 365/12 = 2400  => s = 2400 / (8 * 365/12)
    scale = Decimal(2400) / (Decimal(8) * DAYS_PER_MONTH)
    assert be.scale.quantize(Decimal("1e-12")) == scale.quantize(Decimal("1e-12"))
    assert be.daily_tokens.quantize(Decimal("0.001")) == (scale * 4_000_000).quantize(Decimal("0.001"))


def test_cached_tokens_are_billed_at_the_cached_price_in_the_break_even():
    w = Workload(daily_input_tokens=Decimal(1_000_000), daily_cached_tokens=Decimal(600_000),
                 daily_output_tokens=Decimal(0))
    api, flat = priced([
        {"kind": "per_token", "name": "api", "prices": {"input": "1", "cached_input": "0.1", "output": "1"}},
        {"kind": "provisioned", "name": "flat", "reserved_tpm": 10**12, "monthly_fee": "100"},
    ], w)
    be = break_evens(api, flat, w, Decimal(1000))[0]
    per_day_at_scale_1 = Decimal("0.4") * 1 + Decimal("0.6") * Decimal("0.1")  # USD for 1M tokens of this mix
    expected_scale = Decimal(100) / (per_day_at_scale_1 * DAYS_PER_MONTH)
    assert be.scale.quantize(Decimal("1e-12")) == expected_scale.quantize(Decimal("1e-12"))


def test_a_step_of_dedicated_units_is_a_break_even_at_the_step():
    # peak 1000 tokens/min at scale 1 (1,440,000 tokens/day, flat); each unit carries 1000 tokens/min
    w = workload(input_tokens=1_440_000)
    units, fixed = priced([
        {"kind": "dedicated", "name": "units", "unit_monthly_fee": "100", "unit_tpm": 1000, "headroom": 0},
        {"kind": "provisioned", "name": "fixed", "reserved_tpm": 10**12, "monthly_fee": "150"},
    ], w)
    found = break_evens(units, fixed, w, Decimal(5))
    # 1 unit ($100) is cheaper up to scale 1; the 2nd unit ($200) makes the $150 option cheaper above it
    assert [be.scale for be in found] == [Decimal(1)]
    assert found[0].at_step is True
    assert (found[0].cheaper_below, found[0].cheaper_above) == ("units", "fixed")
    assert found[0].monthly_cost == Decimal(150)


def test_a_break_even_at_a_step_costs_exactly_the_option_cheaper_above_it():
    # one unit carries 5000 tokens/min = 7.2M tokens/day flat; at $20/M the API costs exactly
    # 7.2 x 20 x 365/12 = $4,380/month there, under the second unit's $6,000: the API is cheaper above.
    w = workload(input_tokens=7_200_000)
    api, units = priced([
        {"kind": "per_token", "name": "api", "prices": {"input": "20", "output": "20"}},
        {"kind": "dedicated", "name": "units", "unit_monthly_fee": "3000", "unit_tpm": 5000, "headroom": 0},
    ], w)
    crossing, step = break_evens(api, units, w, Decimal(3))[:2]
    assert (crossing.at_step, step.at_step) == (False, True)
    assert step.scale == Decimal(1) and step.daily_tokens == Decimal(7_200_000)
    assert (step.cheaper_below, step.cheaper_above) == ("units", "api")
    assert step.monthly_cost.quantize(Decimal("1e-18")) == Decimal(4380)  # no per-token spend past the step
    assert money(step.monthly_cost) == "4380"
    assert crossing.monthly_cost.quantize(Decimal("1e-18")) == Decimal(3000)


def test_a_pair_whose_staircases_cross_several_times_is_listed_once():
    w = workload(input_tokens=7_200_000)
    specs = [
        {"kind": "dedicated", "name": "small-units", "unit_monthly_fee": "1000", "unit_tpm": 2000, "headroom": 0},
        {"kind": "dedicated", "name": "big-units", "unit_monthly_fee": "2600", "unit_tpm": 5000, "headroom": 0},
    ]
    scenario = parse_scenario({"options": specs, "economics": {"pricing_at": "2026-11-23"}})
    result = analyse(scenario.options, w, scenario.economics, None, with_sensitivity=False)
    assert len(result.break_evens) >= 3, "the two staircases cross more than once"
    lines = break_even_lines(result)
    assert len(lines) == 1 and lines[0].count("small-units vs big-units") == 1
    stretches = [be.daily_tokens for be in result.break_evens]
    assert stretches == sorted(stretches)
    for be in result.break_evens:
        assert tokens(be.daily_tokens) in lines[0]


def test_no_break_even_beyond_the_volume_an_option_can_serve():
    # the flat option only serves up to 1000 tokens/min with no overflow; the break-even would be far above it
    w = workload(input_tokens=1_440_000)
    api, small = priced([
        {"kind": "per_token", "name": "api", "prices": {"input": "0.01", "output": "0.01"}},
        {"kind": "provisioned", "name": "small", "reserved_tpm": 1000, "monthly_fee": "1000"},
    ], w)
    assert small.max_scale(w) == Decimal(1)
    assert break_evens(api, small, w, Decimal(10**6)) == []


def test_an_option_cheaper_everywhere_has_no_break_even_and_ties_are_not_break_evens():
    w = workload()
    a, b, c = priced([
        {"kind": "per_token", "name": "a", "prices": {"input": "1", "output": "1"}},
        {"kind": "per_token", "name": "b", "prices": {"input": "2", "output": "2"}},
        {"kind": "per_token", "name": "c", "prices": {"input": "1", "output": "1"}},
    ], w)
    assert all_break_evens([a, b, c], w, Decimal(100)) == []


def test_provisioned_overflow_crosses_per_token_at_the_hand_computed_volume():
    # Flat week, 1,440,000 tokens/day = 1000 tokens/min. Reservation 2000 tpm for $50, overflow at $1/M.
    # Per-token API at $2/M. Below scale 2 provisioned costs $50; above, 50 + (s-2) * 1.44M * 365/12 * $1/M.
    w = workload(input_tokens=1_440_000)
    api, ptu = priced([
        {"kind": "per_token", "name": "api", "prices": {"input": "2", "output": "2"}},
        {"kind": "provisioned", "name": "ptu", "reserved_tpm": 2000, "monthly_fee": "50",
         "overflow": {"prices": {"input": "1", "output": "1"}}},
    ], w)
    found = break_evens(api, ptu, w, Decimal(100))
    monthly_per_scale = Decimal("1.44") * DAYS_PER_MONTH  # USD per month per unit of scale at $1/M
    expected = Decimal(50) / (2 * monthly_per_scale)  # api = 50 happens below the kink at scale 2
    assert len(found) == 1
    assert found[0].scale.quantize(Decimal("1e-12")) == expected.quantize(Decimal("1e-12"))
    assert ptu.breakpoints(w, Decimal(100)) == [Decimal(2)]
    # above the kink, both grow; the API ($2/M) grows faster than overflow ($1/M), so no second crossing
    assert found[0].cheaper_below == "api"


@pytest.mark.parametrize("scale", ["0.5", "2", "7.25"])
def test_per_token_cost_is_linear_in_volume(scale):
    w = workload(input_tokens=2_000_000, output_tokens=500_000)
    (api,) = priced([{"kind": "per_token", "name": "api", "prices": {"input": "0.3", "output": "1.2"}}], w)
    base = api.monthly_cost(w).total
    assert api.monthly_cost(w.scaled(Decimal(scale))).total == base * Decimal(scale)
    assert base == (Decimal("2") * Decimal("0.3") + Decimal("0.5") * Decimal("1.2")) * DAYS_PER_MONTH

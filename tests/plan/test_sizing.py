"""Sizing against hand computation: replicas, units, provisioned overflow, utilisation."""

import math
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tollway.plan.economics import usd_per_million, utilisation_curve
from tollway.plan.options import HOURS_PER_MONTH, build_options
from tollway.plan.scenario import parse_scenario
from tollway.plan.workload import Workload, week_weights

AT = datetime(2026, 11, 23, tzinfo=timezone.utc)


def priced(options: list[dict], workload: Workload):
    return build_options(parse_scenario({"options": options}).options, workload, None, AT)


def self_hosted(**fields) -> dict:
    return {"kind": "self_hosted", "name": "gpus", "gpu_hourly_usd": {"on_demand": "2.50"}, "gpus_per_replica": 2,
            **fields}


@pytest.mark.parametrize("daily_output, peak, replica_tps", [
    (10_000_000, "3", 100),      # avg 6944.4 out tpm, peak 20833.3, replica 6000 tpm -> ceil 3.47 = 4
    (8_640_000, "2.5", 250),     # avg 6000, peak 15000, replica 15000 -> exactly 1
    (1_000_000_000, "1.7", 2400),  # avg 694444.4, peak 1180555.6, replica 144000 -> ceil 8.198 = 9
])
def test_replicas_are_ceil_of_peak_tpm_over_replica_tpm_plus_one(daily_output, peak, replica_tps):
    w = Workload(daily_input_tokens=Decimal(0), daily_output_tokens=Decimal(daily_output),
                 peak_to_average=Decimal(peak))
    (gpus,) = priced([self_hosted(replica_output_tokens_per_s=replica_tps)], w)
    peak_tpm = daily_output / 1440 * float(peak)
    expected = math.ceil(round(peak_tpm / (replica_tps * 60), 9)) + 1
    cost = gpus.monthly_cost(w)
    assert cost.units == expected
    assert cost.parts["gpus"] == expected * 2 * Decimal("2.50") * HOURS_PER_MONTH


def test_the_binding_basis_decides_when_both_throughputs_are_given():
    # prompt-heavy: 14.4M input + 1.44M output per day, flat. Output basis: 1000 tpm / 6000 -> 1 replica.
    # Total basis: 11000 tpm / (60 tok/s * 60 = 3600) -> ceil(3.06) = 4 replicas; total decides.
    w = Workload(daily_input_tokens=Decimal(14_400_000), daily_output_tokens=Decimal(1_440_000))
    (gpus,) = priced([self_hosted(replica_output_tokens_per_s=100, replica_total_tokens_per_s=60,
                                  spare_replicas=0)], w)
    assert gpus.monthly_cost(w).units == 4


def test_spares_min_and_max_replicas():
    w = Workload(daily_input_tokens=Decimal(0), daily_output_tokens=Decimal(1_440_000))  # 1000 out tpm
    (few,) = priced([self_hosted(replica_output_tokens_per_s=100, spare_replicas=2, min_replicas=3)], w)
    assert few.monthly_cost(w).units == 5  # max(3, ceil(1000/6000)=1) + 2
    (capped,) = priced([self_hosted(replica_output_tokens_per_s=1, spare_replicas=1, max_replicas=10)], w)
    cost = capped.monthly_cost(w)
    assert cost.units == 18  # ceil(1000/60) + 1
    assert cost.fits is False and "max_replicas 10" in cost.why_not
    assert capped.max_scale(w) == Decimal(9) * 60 / 1000  # 9 serving replicas x 60 tpm over 1000 tpm


def test_power_people_and_other_costs():
    w = Workload(daily_input_tokens=Decimal(0), daily_output_tokens=Decimal(1_440_000))
    (gpus,) = priced([self_hosted(replica_output_tokens_per_s=1000, gpu_watts=700, pue="1.4",
                                  power_usd_per_kwh="0.12", fte="0.5", fte_annual_usd=180000,
                                  other_monthly_usd=250)], w)
    cost = gpus.monthly_cost(w)
    assert cost.units == 2  # 1 serving + 1 spare
    gpus_count = Decimal(4)
    assert cost.parts["power"] == gpus_count * Decimal("0.7") * Decimal("1.4") * 730 * Decimal("0.12")
    assert cost.parts["people"] == Decimal(7500)
    assert cost.parts["other"] == Decimal(250)
    assert cost.total == sum(cost.parts.values())


def test_dedicated_units_cover_the_peak_plus_headroom():
    # 2,880,000 tokens/day flat = 2000 tpm; peak x2 = 4000; +25% headroom = 5000; unit 1200 -> ceil(4.17) = 5
    w = Workload(daily_input_tokens=Decimal(2_000_000), daily_output_tokens=Decimal(880_000),
                 peak_to_average=Decimal(2))
    (units,) = priced([{"kind": "dedicated", "name": "mu", "unit_monthly_fee": "999.99", "unit_tpm": 1200,
                        "headroom": "0.25"}], w)
    cost = units.monthly_cost(w)
    assert cost.units == 5
    assert cost.total == Decimal("4999.95")
    assert units.utilisation(w) == Decimal(2000) / Decimal(6000)


def test_output_token_weight_counts_output_more_against_capacity():
    w = Workload(daily_input_tokens=Decimal(1_440_000), daily_output_tokens=Decimal(1_440_000))
    (units,) = priced([{"kind": "dedicated", "name": "mu", "unit_monthly_fee": 1, "unit_tpm": 1000, "headroom": 0,
                        "output_token_weight": 4}], w)
    assert units.monthly_cost(w).units == 5  # 1000 input + 4 x 1000 output tpm


def test_provisioned_overflow_follows_the_hourly_profile():
    # 24-hour profile: 12 hours at weight 3, 12 hours at weight 1. Daily 1,440,000 tokens.
    # Busy hours carry 3/48 of a day per hour = 90,000 tokens/h = 1500 tpm; quiet: 500 tpm.
    # Reservation 1000 tpm: busy hours spill (1500-1000)/1500 = 1/3 of their tokens; busy hours hold 3/4 of all.
    profile = [Decimal(3)] * 12 + [Decimal(1)] * 12
    w = Workload(daily_input_tokens=Decimal(1_440_000), daily_output_tokens=Decimal(0),
                 hour_weights=week_weights(profile), peak_to_average=Decimal("1.5"))
    (ptu,) = priced([{"kind": "provisioned", "name": "ptu", "reserved_tpm": 1000, "monthly_fee": 100,
                      "overflow": {"prices": {"input": 2, "output": 2}}}], w)
    cost = ptu.monthly_cost(w)
    spilled_daily = Decimal(1_440_000) * Decimal(3) / 4 / 3  # 360,000 tokens a day
    expected_overflow = spilled_daily * 2 / 1_000_000 * 365 / 12
    assert cost.parts["overflow"].quantize(Decimal("1e-18")) == expected_overflow.quantize(Decimal("1e-18"))
    assert cost.total == cost.parts["fee"] + cost.parts["overflow"]
    # utilisation is the average load over the reservation: 1000 tpm over 1000
    assert ptu.utilisation(w) == Decimal(1)
    assert "25.0% of tokens spill" in ptu.sizing(w).details["overflow"]


def test_provisioned_without_overflow_does_not_fit_above_the_reservation():
    w = Workload(daily_input_tokens=Decimal(1_440_000), daily_output_tokens=Decimal(0), peak_to_average=Decimal(2))
    (ptu,) = priced([{"kind": "provisioned", "name": "ptu", "reserved_tpm": 1500, "monthly_fee": 100}], w)
    cost = ptu.monthly_cost(w)
    assert cost.fits is False and "exceeds the reserved" in cost.why_not
    assert ptu.max_scale(w) == Decimal("0.75")


def test_effective_price_per_million_against_utilisation_of_a_dedicated_unit():
    # one unit of 1000 tpm for $432/month: at utilisation u it serves u x 1000 x 1440 x 365/12 tokens a month
    w = Workload(daily_input_tokens=Decimal(720_000), daily_output_tokens=Decimal(0))  # 500 tpm: 50%
    (unit,) = priced([{"kind": "dedicated", "name": "mu", "unit_monthly_fee": 432, "unit_tpm": 1000,
                       "headroom": 0}], w)
    curve = utilisation_curve(unit, w, steps=4)
    assert [p.x for p in curve] == [Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal(1)]
    for point in curve:
        monthly_tokens = point.x * 1000 * 1440 * Decimal(365) / 12
        expected = Decimal(432) / monthly_tokens * 1_000_000
        assert point.y.quantize(Decimal("1e-18")) == expected.quantize(Decimal("1e-18"))
    assert [p.fits for p in curve] == [True, True, True, True]
    assert usd_per_million(unit.monthly_cost(w).total, w) == curve[1].y

"""The sensitivity table finds the inputs that flip the answer and measures each input's swing."""

from datetime import datetime, timezone
from decimal import Decimal

from tollway.plan.scenario import parse_scenario
from tollway.plan.sensitivity import PlanInputs, answer, sensitivity_table
from tollway.plan.workload import workload_from_spec

AT = datetime(2026, 11, 23, tzinfo=timezone.utc)


def cents12(value: Decimal) -> Decimal:
    """A month is 365/12 days, a non-terminating decimal: compare money to 1e-12 USD."""
    return value.quantize(Decimal("1e-12"))


def inputs(options: list[dict], **workload) -> PlanInputs:
    scenario = parse_scenario({"workload": {"daily_input_tokens": 1_000_000, "daily_output_tokens": 0, **workload},
                               "options": options})
    return PlanInputs(tuple(scenario.options), workload_from_spec(scenario.workload), Decimal(0))


CLOSE_CALL = [
    {"kind": "per_token", "name": "api", "prices": {"input": 1, "output": 1}},         # $365 a year
    {"kind": "provisioned", "name": "flat", "reserved_tpm": 10**9, "monthly_fee": 32},  # $384 a year
]


def test_inputs_that_flip_a_close_call_come_first_with_their_swing():
    plan = inputs(CLOSE_CALL)
    base = answer(plan, 1, None, AT)
    assert (base.option, cents12(base.present_value)) == ("api", Decimal(365))
    rows = {row.input: row for row in sensitivity_table(plan, 1, Decimal("0.2"), None, AT)}
    flipped = {name for name, row in rows.items() if row.answer_changes}
    assert flipped == {"token prices", "provisioned fee", "daily volume", "growth per month"}

    prices = rows["token prices"]
    assert (prices.low, prices.high) == ("x0.80", "x1.20")
    assert (prices.answer_low.option, cents12(prices.answer_low.present_value)) == ("api", Decimal(292))
    assert (prices.answer_high.option, prices.answer_high.present_value) == ("flat", Decimal(384))
    assert cents12(prices.swing) == Decimal(92)

    fee = rows["provisioned fee"]
    assert (fee.answer_low.option, fee.answer_low.present_value) == ("flat", Decimal("307.2"))
    assert fee.answer_high.option == "api" and cents12(fee.swing) == Decimal("57.8")

    unmoved = rows["output tokens"]  # there are none: moving zero by 20% moves nothing
    assert unmoved.swing == 0 and not unmoved.answer_changes

    ordered = sensitivity_table(plan, 1, Decimal("0.2"), None, AT)
    assert {row.input for row in ordered[:4]} == flipped
    swings = [row.swing for row in ordered[:4]]
    assert swings == sorted(swings, reverse=True)


def test_inputs_only_appear_for_options_that_have_them():
    plan = inputs([CLOSE_CALL[0]])
    names = {row.input for row in sensitivity_table(plan, 1, Decimal("0.2"), None, AT)}
    assert "GPU $/hour" not in names and "dedicated unit fee" not in names and "provisioned fee" not in names
    hosted = inputs([CLOSE_CALL[0], {"kind": "self_hosted", "name": "g", "gpu_hourly_usd": {"on_demand": 1},
                                     "gpus_per_replica": 1, "replica_output_tokens_per_s": 10,
                                     "replica_total_tokens_per_s": 100, "fte": 1, "fte_annual_usd": 1000}])
    names = {row.input for row in sensitivity_table(hosted, 1, Decimal("0.2"), None, AT)}
    assert {"GPU $/hour", "replica throughput", "people cost"} <= names

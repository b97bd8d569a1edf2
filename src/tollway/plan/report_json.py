"""The plan as JSON (schema `tollway.plan/v1`): every figure the terminal table shows, and the curves.

Numbers are strings of exact decimals (money to the micro-dollar, everything else to 1e-9), never
floats, so a spreadsheet or another program reads the same cents the table printed.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

import orjson

from tollway.plan.economics import CurvePoint
from tollway.plan.figures import plan_notes
from tollway.plan.options import MonthlyCost
from tollway.plan.planner import OptionReport, PlanResult

SCHEMA = "tollway.plan/v1"
MICRO = Decimal("0.000001")
NANO = Decimal("0.000000001")


def money(value: Decimal | None) -> str | None:
    return None if value is None else _plain(_quantize(value, MICRO))


def number(value: Decimal | None) -> str | None:
    return None if value is None else _plain(_quantize(value, NANO))


def _quantize(value: Decimal, step: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 60  # room for a large integer part plus the fraction
        return value.quantize(step)


def _plain(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def plan_dict(result: PlanResult) -> dict[str, Any]:
    """The whole result as plain JSON-ready data."""
    return {
        "schema": SCHEMA,
        "pricing_at": result.pricing_at.isoformat(),
        "workload": workload_dict(result),
        "economics": {
            "horizons_years": result.economics.horizons_years,
            "discount_rate": number(result.economics.discount_rate),
            "projection_months": result.economics.projection_months,
            "projected_volume_multiple": number(result.projected_scale),
            "volume_range_multiple": number(result.volume_range),
            "sensitivity_step": number(result.economics.sensitivity_step),
        },
        "options": [option_dict(o) for o in result.options],
        "break_evens": [{
            "between": [be.first, be.second], "daily_tokens": number(be.daily_tokens),
            "volume_multiple": number(be.scale), "monthly_usd": money(be.monthly_cost),
            "cheaper_below": be.cheaper_below, "cheaper_above": be.cheaper_above, "at_step": be.at_step,
        } for be in result.break_evens],
        "cheapest": {
            "now": {"option": result.cheapest_now.option, "monthly_usd": money(result.cheapest_now.monthly),
                    "daily_tokens": number(result.cheapest_now.daily_tokens)},
            "projected": {"option": result.cheapest_projected.option,
                          "monthly_usd": money(result.cheapest_projected.monthly),
                          "daily_tokens": number(result.cheapest_projected.daily_tokens),
                          "months_from_now": result.economics.projection_months},
            "horizons": {str(years): {"option": a.option, "present_value_usd": money(a.present_value)}
                         for years, a in result.cheapest_by_horizon.items()},
        },
        "sensitivity": [{
            "input": row.input, "low": row.low, "high": row.high,
            "cheapest_low": row.answer_low.option, "present_value_low_usd": money(row.answer_low.present_value),
            "cheapest_high": row.answer_high.option, "present_value_high_usd": money(row.answer_high.present_value),
            "swing_usd": money(row.swing), "answer_changes": row.answer_changes,
        } for row in result.sensitivity],
        "notes": plan_notes(result),
    }


def workload_dict(result: PlanResult) -> dict[str, Any]:
    w = result.workload
    return {
        "source": w.source,
        "daily_input_tokens": number(w.daily_input_tokens),
        "daily_cached_tokens": number(w.daily_cached_tokens),
        "daily_cache_write_tokens": number(w.daily_cache_write_tokens),
        "daily_output_tokens": number(w.daily_output_tokens),
        "daily_tokens": number(w.daily_tokens),
        "peak_to_average": number(w.peak_to_average),
        "growth_per_month": number(w.growth_per_month),
        "batchable_share": number(w.batchable_share),
        "mean_prompt_tokens": w.mean_prompt_tokens,
        "hour_shares": [number(x) for x in w.hour_shares],
        "model_mix": [{
            "provider": m.provider, "model": m.model, "daily_input_tokens": number(m.daily_input_tokens),
            "daily_cached_tokens": number(m.daily_cached_tokens),
            "daily_cache_write_tokens": number(m.daily_cache_write_tokens),
            "daily_output_tokens": number(m.daily_output_tokens), "daily_requests": number(m.daily_requests),
        } for m in w.model_mix],
        "notes": list(w.notes),
    }


def cost_dict(cost: MonthlyCost) -> dict[str, Any]:
    return {"monthly_usd": money(cost.total), "parts": {k: money(v) for k, v in cost.parts.items()},
            "units": cost.units, "fits": cost.fits, "why_not": cost.why_not or None}


def option_dict(report: OptionReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "kind": report.kind,
        "now": cost_dict(report.now),
        "usd_per_million_tokens": money(report.usd_per_million),
        "utilisation": number(report.utilisation),
        "max_daily_tokens": number(report.max_daily_tokens),
        "unit_label": report.sizing.unit_label,
        "capacity_tpm": number(report.sizing.capacity_tpm),
        "sizing": report.sizing.details,
        "projected": cost_dict(report.projected),
        "horizons": [{"years": h.years, "present_value_usd": money(h.present_value), "nominal_usd": money(h.nominal),
                      "first_unfit_month": h.first_unfit_month} for h in report.horizons],
        "notes": list(report.notes),
        "cost_curve": [curve_point(p, "daily_tokens", "monthly_usd") for p in report.cost_curve],
        "utilisation_curve": [curve_point(p, "utilisation", "usd_per_million_tokens")
                              for p in report.utilisation_curve],
    }


def curve_point(point: CurvePoint, x_name: str, y_name: str) -> dict[str, Any]:
    return {x_name: number(point.x), y_name: money(point.y), "fits": point.fits}


def plan_json(result: PlanResult) -> bytes:
    return orjson.dumps(plan_dict(result), option=orjson.OPT_INDENT_2)

"""Put together what one `tollway plan` run prices: scenario file, command-line flags, ledger, bench, catalog.

Precedence, most specific last: scenario file, then the ledger (which replaces the file's workload
volumes, shape, growth and model mix with measured ones), then flags. Keeping this apart from the
click command keeps the command thin and lets tests drive the same path without a CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tollway.plan.bench_capacity import read_bench_capacity, with_bench_throughput
from tollway.plan.ledger_source import open_ledger
from tollway.plan.ledger_workload import workload_from_ledger
from tollway.plan.options import needs_catalog
from tollway.plan.options.token_rates import PriceLookup
from tollway.plan.scenario import (
    EconomicsSpec,
    Option,
    PerTokenOption,
    Scenario,
    ScenarioError,
    SelfHostedOption,
    WorkloadSpec,
    format_validation_error,
    load_scenario,
)
from tollway.plan.workload import Workload, workload_from_spec

WORKLOAD_FLAGS = {"daily_input_tokens": "--daily-input", "daily_cached_tokens": "--daily-cached",
                  "daily_cache_write_tokens": "--daily-cache-write", "daily_output_tokens": "--daily-output"}


@dataclass
class PlanRequest:
    """Everything the user asked for, before any of it is read or checked."""

    scenario_path: Path | None = None
    ledger: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    workload_overrides: dict[str, Decimal] = field(default_factory=dict)
    per_token: tuple[str, ...] = ()
    bench_json: Path | None = None
    bench_target: str | None = None
    replica_output_tps: Decimal | None = None
    replica_total_tps: Decimal | None = None
    economics_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedInputs:
    specs: list[Option]
    workload: Workload
    economics: EconomicsSpec
    catalog: PriceLookup | None
    notes: tuple[str, ...] = ()


def resolve_inputs(request: PlanRequest) -> ResolvedInputs:
    """Read, merge and validate every input; errors name the file, flag or field at fault."""
    scenario = load_scenario(request.scenario_path) if request.scenario_path else Scenario()
    base_dir = request.scenario_path.parent if request.scenario_path else Path.cwd()
    specs = list(scenario.options) + [per_token_option(text) for text in request.per_token]
    specs, bench_notes = apply_bench(specs, request, base_dir)
    workload = resolve_workload(scenario, request)
    economics = merge_economics(scenario.economics, request.economics_overrides)
    catalog = load_catalog(scenario) if needs_catalog(specs) else None
    return ResolvedInputs(specs, workload, economics, catalog, tuple(bench_notes))


def per_token_option(text: str) -> PerTokenOption:
    """`--per-token deepseek/deepseek-flash`: provider before the first slash, model after it."""
    provider, _, model = text.partition("/")
    if not provider or not model:
        raise ScenarioError(f"--per-token {text!r}: write PROVIDER/MODEL, e.g. deepseek/deepseek-flash")
    return PerTokenOption(kind="per_token", name=text, provider=provider, model=model)


def apply_bench(specs: list[Option], request: PlanRequest, base_dir: Path) -> tuple[list[Option], list[str]]:
    """Fill self-hosted throughput from bench files (the option's own, then the flags) or direct flags."""
    if (request.bench_json is None) != (request.bench_target is None):
        raise ScenarioError("--bench-json and --bench-target go together: the file and the target name in it")
    flags_given = request.bench_json is not None or request.replica_output_tps or request.replica_total_tps
    if flags_given and not any(isinstance(s, SelfHostedOption) for s in specs):
        raise ScenarioError("--bench-json/--replica-*-tps apply to self_hosted options, and the scenario has none")
    notes: list[str] = []
    resolved: list[Option] = []
    for spec in specs:
        if isinstance(spec, SelfHostedOption):
            if spec.bench is not None:
                path = spec.bench.json_path if spec.bench.json_path.is_absolute() else base_dir / spec.bench.json_path
                measured = read_bench_capacity(path, spec.bench.target)
                spec, notes = with_bench_throughput(spec, measured), notes + list(measured.notes)
            if request.bench_json is not None and request.bench_target is not None:
                measured = read_bench_capacity(request.bench_json, request.bench_target)
                spec, notes = with_bench_throughput(spec, measured), notes + list(measured.notes)
            direct = {"replica_output_tokens_per_s": request.replica_output_tps,
                      "replica_total_tokens_per_s": request.replica_total_tps}
            spec = spec.model_copy(update={k: v for k, v in direct.items() if v is not None})
        resolved.append(spec)
    return resolved, notes


def resolve_workload(scenario: Scenario, request: PlanRequest) -> Workload:
    overrides = dict(request.workload_overrides)
    if request.ledger:
        return ledger_workload(scenario, request, overrides)
    base = scenario.workload.model_dump(exclude_unset=True) if scenario.workload else {}
    merged = {**base, **overrides}
    if "daily_input_tokens" not in merged or "daily_output_tokens" not in merged:
        raise ScenarioError("no workload: give a scenario with workload:, --from-ledger, or "
                            "--daily-input and --daily-output")
    try:
        spec = WorkloadSpec.model_validate(merged)
    except ValidationError as exc:
        origin = "scenario + flags" if overrides else str(request.scenario_path or "flags")
        raise ScenarioError(format_validation_error(exc, origin, prefix="workload")) from None
    source = "flags" if not scenario.workload else ("scenario + flags" if overrides else "scenario")
    return workload_from_spec(spec, source)


def ledger_workload(scenario: Scenario, request: PlanRequest, overrides: dict[str, Decimal]) -> Workload:
    """Measured traffic; flags may still set shape, growth and batchable share, not the volumes."""
    clashing = [flag for name, flag in WORKLOAD_FLAGS.items() if name in overrides]
    if clashing:
        raise ScenarioError(f"{', '.join(clashing)} conflict with --from-ledger, which measures the volumes")
    batchable = overrides.get("batchable_share", scenario.workload.batchable_share if scenario.workload else Decimal(0))
    assert request.ledger is not None
    workload = workload_from_ledger(open_ledger(request.ledger), request.since, request.until, Decimal(batchable))
    if "growth_per_month" in overrides:
        workload = replace(workload, growth_per_month=overrides["growth_per_month"])
    if "peak_to_average" in overrides:
        peak = overrides["peak_to_average"]
        if peak < workload.profile_peak_to_average:
            raise ScenarioError(f"--peak-to-average {peak} is below the ledger's own busiest hour "
                                f"({workload.peak_to_average:.3f} x average)")
        workload = replace(workload, peak_to_average=peak)
    return workload


def merge_economics(economics: EconomicsSpec, overrides: dict[str, Any]) -> EconomicsSpec:
    if not overrides:
        return economics
    try:
        return EconomicsSpec.model_validate({**economics.model_dump(exclude_unset=True), **overrides})
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, "flags", prefix="economics")) from None


def load_catalog(scenario: Scenario) -> PriceLookup | None:
    """The built-in price catalog plus the scenario's overrides; None when the catalog cannot be imported."""
    try:
        from tollway.catalog import Catalog
    except ImportError:
        return None
    try:
        return Catalog.load(overrides=scenario.catalog_overrides, cny_per_usd=scenario.cny_per_usd)
    except ValueError as exc:
        raise ScenarioError(f"catalog_overrides: {exc}") from None

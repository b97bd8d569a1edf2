"""`tollway bench`: flags in, a BenchConfig out, then run, print and write the reports.

Why thin: everything with a definition lives in its own module (workload, loadgen, metrics, reports); this
file only turns flags into those objects and reports bad flags with the flag's name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from click.core import ParameterSource
from rich.console import Console

from tollway.bench.durations import DurationError, is_duration, parse_duration
from tollway.bench.lengths import LengthError, parse_length
from tollway.bench.loadgen import CONCURRENCY, CONSTANT, POISSON, RATE, LoadLevel, RunBounds
from tollway.bench.slo import SloError, parse_slo
from tollway.bench.targets import DEFAULT_KEY_ENV, Target, TargetError, check_unique, parse_target
from tollway.bench.workload import JsonlWorkload, SharedPrefixWorkload, SyntheticWorkload, Workload, WorkloadError
from tollway.terminal.console import output_console

DEFAULT_SWEEP = (1, 4, 8, 16, 32, 64)
DEFAULT_DURATION = "30s"


def _numbers(text: str, option: str, integer: bool) -> list[float]:
    try:
        values = [int(p) if integer else float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        kind = "whole numbers" if integer else "numbers"
        raise click.BadParameter(f"{text!r} must be comma-separated {kind}", param_hint=option) from None
    if not values or any(v <= 0 for v in values):
        raise click.BadParameter(f"{text!r} must list values greater than zero", param_hint=option)
    return sorted(set(values))


def build_levels(concurrency: str | None, rate: str | None, sweep: bool, arrivals: str) -> list[LoadLevel]:
    if rate and (concurrency or sweep):
        raise click.UsageError("--rate (open loop) cannot be combined with --concurrency or --sweep (closed loop)")
    if rate:
        return [LoadLevel(RATE, v, arrivals) for v in _numbers(rate, "--rate", integer=False)]
    if concurrency:
        return [LoadLevel(CONCURRENCY, v) for v in _numbers(concurrency, "--concurrency", integer=True)]
    return [LoadLevel(CONCURRENCY, v) for v in DEFAULT_SWEEP]


def build_bounds(duration: str | None, requests: int | None, warmup: str, max_inflight: int) -> RunBounds:
    try:
        duration_s = parse_duration(duration, "--duration") if duration else None
        if duration_s is None and requests is None:
            duration_s = parse_duration(DEFAULT_DURATION)
        if is_duration(warmup):
            return RunBounds(duration_s, requests, warmup_s=parse_duration(warmup, "--warmup"),
                             max_inflight=max_inflight)
    except DurationError as exc:
        raise click.BadParameter(str(exc)) from None
    if not warmup.strip().isdigit():
        raise click.BadParameter(f"{warmup!r} must be a duration (e.g. 5s) or a request count (e.g. 10)",
                                 param_hint="--warmup")
    return RunBounds(duration_s, requests, warmup_requests=int(warmup), max_inflight=max_inflight)


def build_workload(prompts: Path | None, input_tokens: str, output_tokens: str, output_given: bool,
                   prefix_tokens: int | None, prefix_groups: int, seed: int) -> Workload:
    try:
        out_dist = parse_length(output_tokens, "--output-tokens")
        if prompts is not None:
            if prefix_tokens:
                raise click.UsageError("--prompts cannot be combined with --prefix-tokens")
            return JsonlWorkload(prompts, out_dist if output_given else None, seed)
        in_dist = parse_length(input_tokens, "--input-tokens")
        if prefix_tokens:
            return SharedPrefixWorkload(prefix_tokens, prefix_groups, in_dist, out_dist, seed)
        return SyntheticWorkload(in_dist, out_dist, seed)
    except (LengthError, WorkloadError) as exc:
        raise click.BadParameter(str(exc)) from None


def build_targets(specs: tuple[str, ...], model: str | None, key_env: str, exact: bool | None) -> list[Target]:
    try:
        targets = [parse_target(spec, model, key_env) for spec in specs]
        check_unique(targets)
    except TargetError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    if exact is not None:
        targets = [t if t.exact_output is not None else Target(t.name, t.base_url, t.model, t.key_env, exact)
                   for t in targets]
    return targets


def _extra_body(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--extra-body") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--extra-body")
    return value


@click.command(name="bench")
@click.option("--target", "targets", multiple=True, metavar="NAME=URL[,model=M][,key_env=VAR][,exact=BOOL]",
              help="An OpenAI-compatible base URL (e.g. http://host:8000/v1). Repeat to compare side by side.")
@click.option("--model", help="Model name sent to every target that does not name its own.")
@click.option("--api-key-env", default=DEFAULT_KEY_ENV, show_default=True,
              help="Environment variable holding the API key (a target can override with key_env=).")
@click.option("--concurrency", help="Closed loop at these concurrencies, e.g. 8 or 1,4,16.")
@click.option("--sweep", is_flag=True, help=f"Closed-loop sweep over {','.join(map(str, DEFAULT_SWEEP))} "
                                            "(the default when no load is given).")
@click.option("--rate", help="Open loop at these request rates (req/s), e.g. 2 or 1,2,4,8.")
@click.option("--arrivals", type=click.Choice([POISSON, CONSTANT]), default=POISSON, show_default=True,
              help="Open-loop arrival process.")
@click.option("--duration", help=f"Measured time per level, e.g. 60s (default {DEFAULT_DURATION} "
                                 "unless --requests is given).")
@click.option("--requests", type=click.IntRange(min=1), help="Measured requests per level.")
@click.option("--warmup", default="2s", show_default=True, help="Uncounted warm-up: a duration or a request count.")
@click.option("--input-tokens", default="256", show_default=True,
              help="Prompt length: N, uniform:MIN,MAX, normal:MEAN,STD or lognormal:MEDIAN,SIGMA.")
@click.option("--output-tokens", default="128", show_default=True, help="Output length, same forms.")
@click.option("--prompts", type=click.Path(path_type=Path), help="JSONL file of prompts instead of synthetic ones.")
@click.option("--prefix-tokens", type=click.IntRange(min=1), help="Shared-prefix workload: prefix length.")
@click.option("--prefix-groups", type=click.IntRange(min=1), default=1, show_default=True,
              help="Shared-prefix workload: number of distinct prefixes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for prompts, lengths and arrivals.")
@click.option("--exact-output/--no-exact-output", default=None,
              help="Send min_tokens+ignore_eos for exact output lengths (default: when the server accepts them).")
@click.option("--slo", help="SLOs for goodput, e.g. ttft=500ms,tpot=50ms,e2e=10s (also itl=).")
@click.option("--goodput-target", type=click.FloatRange(0, 1), default=0.95, show_default=True,
              help="Share of requests that must meet the SLOs for a level to count toward capacity.")
@click.option("--timeout", default="120s", show_default=True, help="Per-request timeout (counts as a miss).")
@click.option("--rate-tolerance", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Open loop: a run completing this much below the offered rate is invalid.")
@click.option("--max-inflight", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Open loop: client-side cap on requests in flight.")
@click.option("--extra-body", help="JSON object merged into every request body (e.g. '{\"temperature\":0}').")
@click.option("--stop-at-first-miss", is_flag=True, help="Stop a target's sweep at the first level missing the SLOs.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Directory for bench.json, bench.csv and the PNG plots.")
@click.option("--html", is_flag=True, help="Also write a self-contained report.html into --out.")
@click.option("--raw", is_flag=True, help="Also write every request's raw timings to requests.jsonl in --out.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (also in the --html report).")
@click.option("--no-live", is_flag=True, help="No live display; one line per finished level.")
@click.option("--wide", is_flag=True, help="Show every column of the tables, however wide they get.")
@click.option("--calibrate", is_flag=True, help="Measure this client's own ceiling against the built-in emulator.")
def bench(targets, model, api_key_env, concurrency, sweep, rate, arrivals, duration, requests, warmup,
          input_tokens, output_tokens, prompts, prefix_tokens, prefix_groups, seed, exact_output, slo,
          goodput_target, timeout, rate_tolerance, max_inflight, extra_body, stop_at_first_miss, out, html, raw,
          no_plots, no_live, wide, calibrate) -> None:
    """Load-test OpenAI-compatible endpoints with one workload and report them side by side.

    Metrics (TTFT, TPOT, ITL, goodput, capacity) are defined in docs/bench.md.
    """
    console = output_console()
    if calibrate:
        from tollway.bench.calibrate import run_calibration
        run_calibration(console)
        return
    if not targets:
        raise click.UsageError("give at least one --target NAME=URL (or --calibrate)")
    from tollway.bench.runner import BenchConfig
    try:
        slo_value = parse_slo(slo)
        timeout_s = parse_duration(timeout, "--timeout")
    except (SloError, DurationError) as exc:
        raise click.BadParameter(str(exc)) from None
    output_given = click.get_current_context().get_parameter_source("output_tokens") is not ParameterSource.DEFAULT
    config = BenchConfig(
        targets=build_targets(targets, model, api_key_env, exact_output),
        levels=build_levels(concurrency, rate, sweep, arrivals),
        bounds=build_bounds(duration, requests, warmup, max_inflight),
        workload=build_workload(prompts, input_tokens, output_tokens, output_given, prefix_tokens, prefix_groups,
                                seed),
        slo=slo_value, goodput_target=goodput_target, timeout_s=timeout_s, rate_tolerance=rate_tolerance,
        extra_body=_extra_body(extra_body), stop_at_first_miss=stop_at_first_miss, keep_records=raw)
    if (html or raw) and out is None:
        raise click.UsageError("--html and --raw write into the --out directory; give --out DIR")
    execute(config, console, out, html=html, raw=raw, plots=not no_plots,
            animate=not no_live and console.is_terminal, wide=wide)


def execute(config, console: Console, out: Path | None, html: bool, raw: bool, plots: bool, animate: bool,
            wide: bool = False) -> None:
    """Run the configured benchmark, print the tables and write the requested files."""
    from tollway.bench.live import LiveProgress
    from tollway.bench.runner import BenchError, run_benchmark

    progress = LiveProgress(console, animate)
    try:
        result = run_benchmark(config, progress)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    from tollway.bench.report_table import print_report
    print_report(result, console, wide)
    if out is not None:
        _write_outputs(result, Path(out), console, html, raw, plots)


def _write_outputs(result, out: Path, console: Console, html: bool, raw: bool, plots: bool) -> None:
    from tollway.bench.report_csv import write_csv
    from tollway.bench.report_json import write_json

    command = ["tollway", *sys.argv[1:]] if sys.argv else []
    written = [write_json(result, out / "bench.json", command), write_csv(result, out / "bench.csv")]
    plot_paths = []
    if plots:
        try:
            from tollway.bench.plots import write_plots
        except ImportError:
            console.print("[yellow]no plots: matplotlib is not installed (pip install 'tollway[plots]')[/yellow]")
        else:
            plot_paths = write_plots(result, out)
            written.extend(plot_paths)
    if html:
        from tollway.bench.html_report import write_html
        written.append(write_html(result, out / "report.html", plot_paths, command))
    if raw:
        from tollway.bench.raw_records import write_raw
        written.append(write_raw(result, out / "requests.jsonl"))
    for path in written:
        console.print(f"wrote {path}")

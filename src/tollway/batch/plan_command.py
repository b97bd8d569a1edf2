"""`tollway batch plan FILE`: the schedule a batch file would get, and what it saves against sending now.

It reads the input file as `POST /v1/batches` would (the same checks, the same 400 messages), plans it
with the gateway's config and catalog (batch/schedule.py), and prints, per deployment, how many lines go
where and when, at which rate, and the expected cost beside the cost of sending every line now. Nothing
is sent and nothing is stored.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import click
import orjson

from tollway.batch.clock import batch_now
from tollway.batch.jsonl import check_models, parse_lines
from tollway.batch.registry import native_clients, serves_natively
from tollway.batch.schedule import PlanLimits, plan_batch
from tollway.batch.types import BatchPlan
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.catalog.errors import CatalogError
from tollway.config import ConfigError, load_config
from tollway.core.errors import GatewayError
from tollway.core.money import decimal_text
from tollway.routing.table import RouteTable


@click.group()
def batch() -> None:
    """Batch files: plan one before sending it to /v1/batches."""


@batch.command("plan")
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--window", default="24h", show_default=True, help="The batch's completion_window.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Gateway config. Default: as `tollway serve` finds it.")
@click.option("--at", "at_text", metavar="ISO-TIME", help="Plan as if the batch were created then (UTC if no zone).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(input_file: Path, window: str, config_path: Path | None, at_text: str | None, as_json: bool) -> None:
    """Show where and when each line of INPUT_FILE would run, and its expected cost against now.

    \b
    Example:
      tollway batch plan requests.jsonl --window 24h --config tollway.yaml
    """
    try:
        config, _ = load_config(config_path)
        catalog = Catalog.from_config_section({"catalog": config.catalog, "cny_per_usd": config.cny_per_usd})
        table = RouteTable(config, catalog, resolve_secrets=False)
    except (ConfigError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    settings = config.batch
    try:
        lines = parse_lines(input_file.read_bytes(), settings.max_file_bytes, settings.max_lines)
        check_models(lines, table)
    except GatewayError as exc:
        raise click.ClickException(f"{input_file}: {exc.message}") from None
    at = _at(at_text)
    native = native_clients(None)
    limits = PlanLimits(settings.concurrency, settings.line_estimate_s, settings.expected_output_tokens,
                        settings.max_window_h)
    result = plan_batch(lines, table, DeploymentPricer(catalog), at, window,
                        native=serves_natively(native), limits=limits)
    if not result.feasible:
        raise click.ClickException(f"the schedule cannot meet this window: {result.reason}")
    shares = summary(result)
    if as_json:
        click.echo(orjson.dumps({"window": window, "created_at": at.isoformat(), "deadline": result.deadline.isoformat(),
                                 "expected_cost_usd": decimal_text(result.expected_cost_usd),
                                 "cost_now_usd": decimal_text(result.cost_now_usd),
                                 "worst_case_usd": decimal_text(result.worst_case_usd), "shares": shares},
                                option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{len(lines)} lines, window {window}: created {at:%Y-%m-%d %H:%M} UTC, due {result.deadline:%Y-%m-%d %H:%M} UTC")
    click.echo(f"{'deployment':<20} {'lines':>5}  {'mode':<9} {'rate':<9} {'sent from (UTC)':<17} {'expected $':>12}")
    for share in shares:
        click.echo(f"{share['deployment']:<20} {share['lines']:>5}  {share['mode']:<9} {share['rate']:<9} "
                   f"{share['not_before'][:16].replace('T', ' '):<17} {share['expected_cost_usd']:>12}")
    saved = result.cost_now_usd - result.expected_cost_usd
    percent = f" ({saved / result.cost_now_usd:.0%})" if result.cost_now_usd else ""
    click.echo(f"expected ${decimal_text(result.expected_cost_usd)} against ${decimal_text(result.cost_now_usd)} "
               f"sent now at the standard rate: saves ${decimal_text(saved)}{percent}; reserves up to "
               f"${decimal_text(result.worst_case_usd)} against budgets")


def summary(result: BatchPlan) -> list[dict]:
    """The plan's lines grouped by (deployment, mode, rate, send time), in send order."""
    groups: dict[tuple, list] = defaultdict(list)
    for line in result.lines:
        groups[(line.deployment, line.mode, line.rate, line.not_before)].append(line)
    return [{"deployment": dep, "mode": mode, "rate": rate, "not_before": when.isoformat(), "lines": len(items),
             "expected_cost_usd": decimal_text(sum((i.expected_cost_usd for i in items), Decimal(0)))}
            for (dep, mode, rate, when), items in sorted(groups.items(), key=lambda kv: (kv[0][3], kv[0][0]))]


def _at(text: str | None) -> datetime:
    if not text:
        return batch_now()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO time such as 2026-12-08T02:00", param_hint="--at") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)

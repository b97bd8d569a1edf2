"""`tollway replay`: what the logged traffic would have cost under a candidate config. Thin: flags here,
the work in replay.py, the output in replay_report.py and replay_table.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import orjson

from tollway.plan.command import MOMENT
from tollway.plan.ledger_source import redact
from tollway.plan.replay import default_ledger, load_candidate, replay_ledger
from tollway.plan.replay_report import ReplaySource, replay_dict, rows_csv, summary_csv
from tollway.plan.replay_table import print_replay
from tollway.plan.scenario import ScenarioError
from tollway.terminal.console import output_console


@click.command("replay")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The candidate tollway.yaml: its providers, deployments, prices and route groups.")
@click.option("--ledger", metavar="PATH_OR_URL",
              help="Ledger to replay: a SQLite path, sqlite:///path or postgresql://... "
                   "Default: the ledger the candidate config names (database_url, ledger.path), "
                   "else the default ledger.")
@click.option("--since", type=MOMENT, help="First moment replayed, e.g. 2026-10-01 (UTC unless an offset is given).")
@click.option("--until", type=MOMENT, help="Replay requests before this moment, e.g. 2026-11-01.")
@click.option("--include-failed", is_flag=True, help="Replay failed requests too (default: answered ones only).")
@click.option("--json", "as_json", is_flag=True, help="Print the replay as JSON (exact decimal amounts).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: the total, each route group and each day.")
@click.option("--rows", is_flag=True, help="With --json or --csv: every request's decision too (--csv: one line "
                                           "per request instead of the summary).")
@click.option("--wide", is_flag=True, help="Show every column of the tables, however wide they get.")
def replay(config_path: Path, ledger: str | None, since: datetime | None, until: datetime | None,
           include_failed: bool, as_json: bool, as_csv: bool, rows: bool, wide: bool) -> None:
    """Walk the ledger's requests through a candidate routing config without calling any model: which
    deployment would have served each, what it would have cost, which it could not serve, and the
    difference by route group and by day.

    \b
    Example:
      tollway replay --config candidate.yaml --ledger ledger.db --since 2026-10-01 --until 2026-11-01
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if rows and not (as_json or as_csv):
        raise click.UsageError("--rows goes with --json or --csv")
    if since is not None and until is not None and since >= until:
        raise click.BadParameter(f"{since.isoformat()} is not before --until {until.isoformat()}", param_hint="--since")
    try:
        candidate = load_candidate(config_path)
        location = ledger or default_ledger(candidate.config)
        totals = replay_ledger(candidate, location, since, until, include_failed, keep_rows=rows)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    source = ReplaySource(str(candidate.path), redact(location), since, until, include_failed)
    if as_json:
        click.echo(orjson.dumps(replay_dict(totals, source), option=orjson.OPT_INDENT_2).decode())
    elif as_csv:
        click.echo(rows_csv(totals.decisions or []) if rows else summary_csv(totals), nl=False)
    else:
        print_replay(totals, source, output_console(highlight=False), wide)

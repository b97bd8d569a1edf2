"""Which ledger a reading command (usage, report, reconcile, audit) reads: the one `tollway serve` writes.

A reader that looked somewhere else than the gateway would report an empty or stale ledger as the truth,
so the search is the gateway's own: `--ledger` if given, else the config found as `serve` finds it
(`--config`, $TOLLWAY_CONFIG, ./tollway.yaml, the user config dir) and its `ledger.path`, else the
default ledger file. Every reader says on stderr which file it found and why, so a surprise is visible
without spoiling `--json` output (a file named with `--ledger` is not a surprise, and is not repeated).

These readers read SQLite. A config whose ledger lives in PostgreSQL (`database_url`) keeps no SQLite
ledger beside it, so rather than read whatever old file sits at the path, the reader stops and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import click

from tollway.config import Config, ConfigError, default_config_path, default_ledger_path, load_config

log = logging.getLogger("tollway.ledger")
EXPLICIT = "--ledger"


@dataclass(frozen=True, slots=True)
class LedgerLocation:
    """The ledger file to read, the config it came from (None when no config file was found), and why."""

    path: Path
    reason: str
    config: Config | None = None
    config_path: Path | None = None


def find_ledger(command: str, config_path: Path | None = None, ledger: Path | None = None,
                database_url: str | None = None) -> LedgerLocation:
    """The SQLite ledger `command` should read; raises click.ClickException for a bad config or a
    PostgreSQL ledger (named by the config or `database_url`) when no `ledger` file was given."""
    config, found_at = _config(config_path, needed=ledger is None or config_path is not None)
    if ledger is not None:
        return LedgerLocation(ledger, EXPLICIT, config, found_at)
    url = database_url or (config.database_url if config is not None else None)
    if url:
        where = "--database-url" if database_url else f"database_url in {found_at}"
        raise click.ClickException(
            f"the ledger is in PostgreSQL ({where}); `tollway {command}` reads SQLite ledgers only, and the file "
            f"beside it ({_configured_path(config)}) is not that ledger. Pass --ledger FILE to read a SQLite ledger.")
    if config is not None and config.ledger.path is not None:
        return LedgerLocation(config.ledger.path, f"ledger.path in {found_at}", config, found_at)
    reason = f"the default; {found_at} names no ledger.path" if found_at else "the default; no tollway.yaml found"
    return LedgerLocation(default_ledger_path(), reason, config, found_at)


def announce(location: LedgerLocation) -> None:
    """Say on stderr which ledger was found and why (stdout stays clean for --json and --csv)."""
    log.debug("reading ledger %s (%s)", location.path, location.reason)
    if location.reason != EXPLICIT:
        click.echo(f"ledger: {location.path} ({location.reason})", err=True)


def _config(config_path: Path | None, needed: bool) -> tuple[Config | None, Path | None]:
    """The config `serve` would load, or (None, None) when there is no config file to find. The bundled
    local-model config names no ledger, so it is not loaded. A config found (not named) while the ledger
    was named is only a source of catalog overrides: if it does not load, it is passed over."""
    path = config_path or default_config_path()
    if path is None:
        return None, None
    try:
        config, found_at = load_config(path)
    except ConfigError as exc:
        if not needed:
            return None, None
        raise click.ClickException(str(exc)) from None
    return config, found_at


def _configured_path(config: Config | None) -> Path:
    return (config.ledger.path if config is not None else None) or default_ledger_path()

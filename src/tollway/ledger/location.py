"""Which ledger a reading command (usage, report, reconcile, audit) reads: the one `tollway serve` writes.

A reader that looked somewhere else than the gateway would report an empty or stale ledger as the truth,
so the search is the gateway's own: `--ledger FILE` if given (a SQLite file), else the PostgreSQL ledger
named by `--database-url`, $TOLLWAY_DATABASE_URL or the config's `database_url` (the order `serve`
uses), else the config's `ledger.path`, else the default ledger file; the config is found as `serve`
finds it (`--config`, $TOLLWAY_CONFIG, ./tollway.yaml, the user config dir). Every reader says on stderr
which ledger it read and why, so a surprise is visible without spoiling `--json` output (a file named
with `--ledger` is not a surprise, and is not repeated). A PostgreSQL URL is shown without its password.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from tollway.config import Config, ConfigError, default_config_path, default_ledger_path, load_config
from tollway.config_env import ENV_DATABASE_URL
from tollway.core.redact import redact_url
from tollway.ledger.reader import LedgerReader, open_reader

log = logging.getLogger("tollway.ledger")
EXPLICIT = "--ledger"


@dataclass(frozen=True, slots=True)
class LedgerLocation:
    """The ledger to read (a SQLite file, or PostgreSQL when `database_url` is set), the config it came
    from (None when no config file was found), and why."""

    path: Path
    reason: str
    config: Config | None = None
    config_path: Path | None = None
    database_url: str | None = None

    @property
    def description(self) -> str:
        """The ledger as a user may see it: the file, or the URL without its password."""
        return redact_url(self.database_url) if self.database_url else str(self.path)

    def reader(self) -> LedgerReader:
        return open_reader(self.path, self.database_url)


def find_ledger(command: str, config_path: Path | None = None, ledger: Path | None = None,
                database_url: str | None = None) -> LedgerLocation:
    """The ledger `command` should read; raises click.ClickException for a bad config. `database_url` is
    the command's `--database-url` (click also fills it from $TOLLWAY_DATABASE_URL, see DATABASE_URL_HELP)."""
    config, found_at = _config(config_path, needed=ledger is None or config_path is not None)
    if ledger is not None:
        return LedgerLocation(ledger, EXPLICIT, config, found_at)
    url = database_url or (config.database_url if config is not None else None)
    if url:
        where = _url_source(database_url, found_at)
        return LedgerLocation(_configured_path(config), where, config, found_at, database_url=url)
    if config is not None and config.ledger.path is not None:
        return LedgerLocation(config.ledger.path, f"ledger.path in {found_at}", config, found_at)
    reason = f"the default; {found_at} names no ledger.path" if found_at else "the default; no tollway.yaml found"
    return LedgerLocation(default_ledger_path(), reason, config, found_at)


def announce(location: LedgerLocation) -> None:
    """Say on stderr which ledger was found and why (stdout stays clean for --json and --csv)."""
    log.debug("reading ledger %s (%s)", location.description, location.reason)
    if location.reason != EXPLICIT:
        click.echo(f"ledger: {location.description} ({location.reason})", err=True)


DATABASE_URL_HELP = ("PostgreSQL ledger to read (default: $TOLLWAY_DATABASE_URL, else the config's database_url); "
                     "--ledger FILE reads a SQLite file instead.")


def database_url_option(command: Callable) -> Callable:
    """The `--database-url` option of a reading command, filled from the environment as `serve` is."""
    return click.option("--database-url", envvar=ENV_DATABASE_URL, show_envvar=True, metavar="URL",
                        help=DATABASE_URL_HELP)(command)


def _url_source(flag_or_env: str | None, found_at: Path | None) -> str:
    if flag_or_env:
        return ENV_DATABASE_URL if os.environ.get(ENV_DATABASE_URL) == flag_or_env else "--database-url"
    return f"database_url in {found_at}"


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

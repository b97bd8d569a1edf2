"""`tollway serve`: load the config, build the gateway, serve until SIGTERM/SIGINT, flush the ledger."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from tollway.config import ConfigError, load_config


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file. Default: $TOLLWAY_CONFIG, ./tollway.yaml, then the user config dir "
                   "(~/.config/tollway/tollway.yaml); with none, the bundled local model.")
@click.option("--host", help="Interface to listen on (overrides server.host).")
@click.option("--port", type=int, help="Port to listen on (overrides server.port).")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path), help="SQLite ledger file (overrides ledger.path).")
@click.option("--redis-url", help="Redis for limits, budgets and revocations shared by replicas (overrides redis_url), "
                                  "e.g. redis://127.0.0.1:6379/0.")
@click.option("--database-url", help="PostgreSQL for the ledger and keys (overrides database_url), "
                                     "e.g. postgresql://tollway@db/tollway.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: Path | None, host: str | None, port: int | None, ledger_path: Path | None,
          redis_url: str | None, database_url: str | None, log_level: str) -> None:
    """Run the OpenAI-compatible gateway."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config, path = load_config(config_path)
        config = _with_overrides(config, host, port, ledger_path, redis_url, database_url)
        from tollway.gateway.app import Gateway  # after the config is known good: keeps errors fast

        gateway = Gateway(config, path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    _run(gateway)


def _with_overrides(config, host: str | None, port: int | None, ledger_path: Path | None,
                    redis_url: str | None = None, database_url: str | None = None):
    from tollway.accounting.settings import check_database_url, check_redis_url

    server = config.server.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
    ledger = config.ledger.model_copy(update={"path": ledger_path}) if ledger_path else config.ledger
    urls = {k: v for k, v in (("redis_url", redis_url), ("database_url", database_url)) if v is not None}
    try:
        check_redis_url(urls.get("redis_url"))
        check_database_url(urls.get("database_url"))
    except ValueError as exc:
        flag = "--redis-url" if "redis_url" in str(exc) else "--database-url"
        raise click.BadParameter(str(exc), param_hint=flag) from None
    return config.model_copy(update={"server": server, "ledger": ledger, **urls})


def _run(gateway) -> None:
    from aiohttp import web

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is optional (not on Windows); asyncio's loop works, slower
        pass
    server = gateway.config.server
    click.echo(f"tollway listening on http://{server.host}:{server.port}/v1 (config: {gateway.config_path})", err=True)
    try:
        web.run_app(gateway.app(), host=server.host, port=server.port, access_log=None, print=None,
                    shutdown_timeout=30.0)
    except ConfigError as exc:  # found at start-up, e.g. an unreachable key store: a message, not a traceback
        raise click.ClickException(str(exc)) from None

"""`tollway serve`: load the config, build the gateway, serve until SIGTERM/SIGINT (reloading the config
on SIGHUP), flush the ledger."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket
from pathlib import Path

import click

from tollway.config import ConfigError, load_config
from tollway.config_env import ENV_CONFIG, ENV_DATABASE_URL, ENV_HOST, ENV_PORT, ENV_REDIS_URL

log = logging.getLogger("tollway.serve")
SHUTDOWN_TIMEOUT_S = 30.0  # how long requests in flight may run after SIGTERM


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar=ENV_CONFIG, show_envvar=True,
              help="Config file. Default: $TOLLWAY_CONFIG, ./tollway.yaml, then the user config dir "
                   "(~/.config/tollway/tollway.yaml); with none, the bundled local model.")
@click.option("--host", envvar=ENV_HOST, show_envvar=True, help="Interface to listen on (overrides server.host).")
@click.option("--port", type=click.IntRange(0, 65535), envvar=ENV_PORT, show_envvar=True,
              help="Port to listen on (overrides server.port).")
@click.option("--ledger", "ledger_path", type=click.Path(path_type=Path), help="SQLite ledger file (overrides ledger.path).")
@click.option("--redis-url", envvar=ENV_REDIS_URL, show_envvar=True,
              help="Redis for limits, budgets and revocations shared by replicas (overrides redis_url), "
                   "e.g. redis://127.0.0.1:6379/0.")
@click.option("--database-url", envvar=ENV_DATABASE_URL, show_envvar=True,
              help="PostgreSQL for the ledger and keys (overrides database_url), "
                   "e.g. postgresql://tollway@db/tollway.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Gateway processes sharing the port (use one per core). Limits and budgets hold across "
                   "workers only with a Redis (--redis-url).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: Path | None, host: str | None, port: int | None, ledger_path: Path | None,
          redis_url: str | None, database_url: str | None, workers: int, log_level: str) -> None:
    """Run the OpenAI-compatible gateway."""
    try:
        config, path = load_config(config_path)
        config = _with_overrides(config, host, port, ledger_path, redis_url, database_url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from tollway.observe.logs import configure

    configure(log_level, config.observe.logs)  # before anything logs: the first line has the configured format
    _log_loaded(config, path)
    if workers > 1:
        _check_workers(config, workers)
    sock = _bind(config.server)  # before anything says it serves: a busy port is the only line printed
    metrics_dir = _fleet_metrics_dir() if workers > 1 else None  # before the gateway builds its /metrics
    try:
        from tollway.gateway.app import Gateway  # after the config is known good: keeps errors fast

        gateway = Gateway(config, path)
        gateway.overrides = lambda new: _with_overrides(new, host, port, ledger_path, redis_url, database_url)
    except ConfigError as exc:
        sock.close()
        if metrics_dir is not None:
            from tollway.observe.worker_metrics import remove_fleet_dir

            remove_fleet_dir(metrics_dir)
        raise click.ClickException(str(exc)) from None
    _run(gateway, sock, workers, metrics_dir)


def _fleet_metrics_dir() -> Path:
    from tollway.observe.worker_metrics import make_fleet_dir

    return make_fleet_dir()


def _log_loaded(config, path: Path) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    log.debug("config loaded from %s: providers %s; deployments %s; route groups %s", path,
              ", ".join(config.providers), ", ".join(config.deployments), ", ".join(config.route_groups) or "none")
    from tollway.config import default_ledger_path
    from tollway.core.redact import redact_url

    ledger = redact_url(config.database_url) if config.database_url else config.ledger.path or default_ledger_path()
    log.debug("ledger: %s; counters: %s", ledger,
              redact_url(config.redis_url) if config.redis_url else "in process")


def _bind(server) -> socket.socket:
    from tollway.gateway.workers import listening_socket

    try:
        return listening_socket(server.host, server.port)
    except OSError as exc:
        hint = " (another process listens there: stop it or choose another --port)" \
            if exc.errno == errno.EADDRINUSE else ""
        raise click.ClickException(f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}{hint}") \
            from None


def _check_workers(config, workers: int) -> None:
    managed = [name for name, p in config.providers.items() if p.launch]
    if managed:
        raise click.ClickException(
            f"--workers {workers}: provider(s) {', '.join(managed)} use `launch:`, which starts one backend per "
            "process; run it once with `tollway local-model serve` and point base_url at it, or use --workers 1")
    if not config.redis_url:
        logging.getLogger("tollway.workers").warning(
            "--workers %d without redis_url: each worker enforces rate limits and budgets on its own, so a "
            "limit can be exceeded up to %d times; set redis_url (or --redis-url) to share them", workers, workers)


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
        flag = ("--redis-url", ENV_REDIS_URL) if "redis_url" in str(exc) else ("--database-url", ENV_DATABASE_URL)
        raise click.BadParameter(str(exc), param_hint=f"'{flag[0]}' (or ${flag[1]})") from None
    return config.model_copy(update={"server": server, "ledger": ledger, **urls})


def _run(gateway, sock: socket.socket, workers: int = 1, metrics_dir: Path | None = None) -> None:
    server = gateway.config.server
    address = f"http://{server.host}:{sock.getsockname()[1]}/v1"
    message = (f"tollway listening on {address} (config: {gateway.config_path}"
               f"{f'; {workers} workers' if workers > 1 else ''})")
    if gateway.config.observe.logs.format == "json":  # one format on stderr: a log shipper parses every line
        log.info(message, extra={"event": {"event": "listening", "address": address,
                                           "config": str(gateway.config_path), "workers": workers}})
    else:
        click.echo(message, err=True)
    if workers == 1:
        _serve_one(gateway, sock)
        return
    from tollway.gateway.workers import run_workers

    assert metrics_dir is not None, "serve() makes the directory for --workers N"
    raise SystemExit(run_workers(workers, sock, lambda s: _serve_one(gateway, s), metrics_dir))


def _serve_one(gateway, sock) -> None:
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # uvloop is optional (not on Windows); asyncio's loop works, slower
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve_until_signal(gateway, sock))
    except ConfigError as exc:  # found at start-up, e.g. an unreachable key store: a message, not a traceback
        raise click.ClickException(str(exc)) from None


async def serve_until_signal(gateway, sock: socket.socket | None) -> None:
    """Start the gateway (aiohttp's on_startup: ledger, admission, router, observer), serve the OpenAI
    endpoints on the raw server until SIGTERM/SIGINT, then stop listening, let requests in flight finish
    (up to SHUTDOWN_TIMEOUT_S), close idle connections and clean up (which flushes the ledger)."""
    from aiohttp import web

    from tollway.gateway.http_server import HotPathServer

    loop = asyncio.get_running_loop()
    hup = asyncio.Event()  # SIGHUP: reload; one that comes while starting waits until the gateway serves
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    runner = web.AppRunner(gateway.app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    reloader: asyncio.Task | None = None
    try:
        await runner.setup()
        _freeze_startup_objects()
        assert runner.server is not None  # setup() made it
        hot = HotPathServer(gateway, runner.server, gateway.aiohttp_paths())
        server = await _listen(loop, hot, gateway.config.server, sock)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        reloader = loop.create_task(_reload_on_signal(gateway, hup), name="reload-on-sighup")
        await stop.wait()
        server.close()
        await hot.shutdown(SHUTDOWN_TIMEOUT_S)
    finally:
        if reloader is not None:
            reloader.cancel()
        await runner.cleanup()


async def _reload_on_signal(gateway, hup: asyncio.Event) -> None:
    """Reload after each SIGHUP (gateway/reload.py logs the outcome: what serves now, or why not)."""
    while True:
        await hup.wait()
        hup.clear()
        try:
            await gateway.reload()
        except Exception:  # a reload that fails unexpectedly must not stop the next one, nor the gateway
            log.exception("reload failed; the old config keeps serving")


def _freeze_startup_objects() -> None:
    """Move everything built at start-up (modules, config, catalog, tables) out of the collector's sight:
    it lives as long as the process, and scanning it in every full collection is a pause on the request
    path that grows with the config, not the traffic."""
    gc.collect()
    gc.freeze()


async def _listen(loop: asyncio.AbstractEventLoop, hot, server_settings, sock: socket.socket | None):
    if sock is not None:
        return await loop.create_server(hot, sock=sock, backlog=2048)
    try:
        return await loop.create_server(hot, server_settings.host, server_settings.port, backlog=2048,
                                        reuse_address=True)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {server_settings.host}:{server_settings.port}: "
                          f"{exc.strerror or exc}") from None

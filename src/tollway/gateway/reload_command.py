"""`tollway reload`: ask a running gateway to re-read its config, and print what it answered.

It calls `POST /admin/reload` rather than sending SIGHUP to a pid, because the endpoint answers: a refused
config comes back with its error, printed here with exit code 1, while a signal can only be logged. The
gateway's address and the admin key's env var are read from the same config `serve` reads (or given).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import click

from tollway.config import ConfigError, load_config
from tollway.config_env import ENV_CONFIG, ENV_HOST, ENV_PORT

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # an egress proxy is for upstream calls
ANY_INTERFACE = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar=ENV_CONFIG, show_envvar=True,
              help="The config the gateway serves (for its address and `server.admin_key_env`).")
@click.option("--url", help="The gateway's base URL, e.g. http://127.0.0.1:4000 (default: from the config).")
@click.option("--host", envvar=ENV_HOST, help="As given to `tollway serve` (overrides server.host).")
@click.option("--port", type=click.IntRange(0, 65535), envvar=ENV_PORT, help="As given to `tollway serve`.")
def reload(config_path: Path | None, url: str | None, host: str | None, port: int | None) -> None:
    """Reload a running gateway's config (route groups, deployments, prices, limits, residency)."""
    try:
        config, _ = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from tollway.accounting.credentials import resolve_admin_key

    try:
        admin_key = resolve_admin_key(config.server)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if admin_key is None:
        raise click.ClickException("server.admin_key_env is not set in the config: /admin/reload needs the admin "
                                   "key (or send SIGHUP to the `tollway serve` process)")
    base = url or _base_url(host or config.server.host, port or config.server.port)
    status, text = _post(f"{base.rstrip('/')}/admin/reload", admin_key)
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    if status == 200:
        click.echo(body.get("message", "reloaded"))
        return
    message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    raise click.ClickException(f"HTTP {status}: {message or text[:500]}")


def _post(url: str, admin_key: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"", method="POST", headers={"Authorization": f"Bearer {admin_key}"})
    try:
        with _DIRECT.open(request, timeout=60) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach the gateway at {url}: {reason}") from None


def _base_url(host: str, port: int) -> str:
    host = ANY_INTERFACE.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

"""Reload without restart: read the config again, build what depends on it, swap one reference.

Everything a request reads comes through one `RequestServices` record, taken when the request starts; a
reload builds a new pricer, route table and router from the new config, reconfigures admission, and puts
them in a new record in one assignment, so a request in flight finishes on the record (and plan) it
started with, and the next one sees only the new config, never a mix. Nothing is swapped until all of it
is built: a config that does not load, validate or build is refused with its error and the old one
keeps serving.

What carries over: the ledger writer, the upstream HTTP client, the observer, admission's counters and key
cache (budget spend and rate windows never reset), each deployment's breaker and latency statistics
when the deployment, its provider (its keys aside) and the breaker settings are unchanged (a changed one
starts closed), and each provider key's breaker while the key is still listed (a new key starts in turn).
What a reload cannot change (the socket, the stores) keeps its start-up value, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import KEY_SOURCES, Config, ConfigError, Provider, load_config
from tollway.routing.router import Router
from tollway.routing.table import RouteTable

if TYPE_CHECKING:
    from tollway.gateway.app import Gateway

log = logging.getLogger("tollway.reload")
FIXED_AT_START = ("database_url", "redis_url", "ledger", "keys", "batch")  # stores opened once, at start-up
FIXED_SERVER = ("host", "port", "admin_key_env")  # the socket is bound once; the admin gate is made once


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    message: str


async def reload_gateway(gateway: Gateway, overrides: Callable[[Config], Config]) -> ReloadResult:
    """Read `gateway.config_path` again (with the command line's overrides) and swap it in, or refuse."""
    old = gateway.config
    try:
        config, _ = load_config(gateway.config_path)
        config = _keep_fixed(old, overrides(config))
        pricer = DeploymentPricer(Catalog.from_config_section({"catalog": config.catalog,
                                                                "cny_per_usd": config.cny_per_usd}))
        table = RouteTable(config, pricer.catalog)
        carry_breakers(old, gateway.table, config, table)
        router = Router(table, pricer, gateway.upstream, gateway.ledger.append)
        gateway.admission.reconfigure(config, pricer)  # last: it may refuse, and changes nothing if it does
    except (ConfigError, ValueError) as exc:
        log.error("reload refused, the old config keeps serving: %s", exc)
        return ReloadResult(False, str(exc))
    except Exception as exc:  # a config this code did not foresee: still refused, never half taken
        log.exception("reload refused, the old config keeps serving")
        return ReloadResult(False, f"{type(exc).__name__}: {exc}")
    await router.start(gateway.session)
    old_router = gateway.router
    services = replace(gateway.services, table=table, router=router, pricer=pricer, retry=config.retry,
                       request_deadline_s=config.server.request_deadline_s)
    gateway.config, gateway.pricer, gateway.table, gateway.router = config, pricer, table, router
    gateway.observer.take_table(table, pricer)
    gateway.services = services  # the swap: requests from here on see only the new config
    asyncio.get_running_loop().call_later(old.server.request_deadline_s + 1, _stop_later, old_router)
    message = (f"reloaded {gateway.config_path}: route groups {', '.join(config.route_groups) or 'none'}; "
               f"deployments {', '.join(config.deployments)}")
    log.info(message)
    return ReloadResult(True, message)


def _keep_fixed(old: Config, new: Config) -> Config:
    changed = [name for name in FIXED_AT_START if getattr(old, name) != getattr(new, name)]
    changed += [f"server.{name}" for name in FIXED_SERVER if getattr(old.server, name) != getattr(new.server, name)]
    if changed:
        log.warning("reload: %s changed; that takes a restart, so the start-up value stays", ", ".join(changed))
    server = new.server.model_copy(update={name: getattr(old.server, name) for name in FIXED_SERVER})
    return new.model_copy(update={"server": server, **{name: getattr(old, name) for name in FIXED_AT_START}})


def carry_breakers(old: Config, old_table: RouteTable, new: Config, new_table: RouteTable) -> None:
    """An unchanged deployment keeps its breaker and latency statistics: a reload is no reason to send
    traffic back to a deployment that is failing, nor to forget how fast one is. Keys are rotated by
    reloading: a key still listed keeps its breaker, and adding or removing one changes no deployment's."""
    for provider, ring in new_table.key_rings.items():
        if provider in old_table.key_rings:
            ring.take_state(old_table.key_rings[provider])
    if old.breaker.model_copy(update={"key_open_s": 0}) != new.breaker.model_copy(update={"key_open_s": 0}):
        return
    for name, dep in new_table.deployments.items():
        before = old_table.deployments.get(name)
        if before is None or old.deployments.get(name) != new.deployments.get(name):
            continue
        if _without_keys(old.providers.get(dep.provider)) != _without_keys(new.providers.get(dep.provider)):
            continue
        dep.breaker, dep.stats = before.breaker, before.stats


def _without_keys(provider: Provider | None) -> Provider | None:
    """The provider's settings but its keys: a rotated key is the same provider."""
    return None if provider is None else provider.model_copy(update=dict.fromkeys(KEY_SOURCES))


def _stop_later(router: Router) -> None:
    """The old router's background work ends once every request that could hold it has passed its deadline."""
    task = asyncio.get_running_loop().create_task(router.stop(), name="old-router-stop")
    _STOPPING.add(task)
    task.add_done_callback(_STOPPING.discard)


_STOPPING: set[asyncio.Task] = set()

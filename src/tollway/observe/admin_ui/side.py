"""The admin side as the gateway builds it from the config: access control, the audit log and the UI.

It is on when the config names an admin key (`server.admin_key_env`) or single sign-on (`admin.oidc`);
off, the admin API keeps answering that it is off. Installing it on the aiohttp application makes the
admin API (accounting/admin_api.py) ask it who calls and record what they did, and adds the UI's routes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from tollway.accounting.admin_api import ADMIN_SIDE
from tollway.accounting.credentials import resolve_admin_key
from tollway.config import ConfigError, default_ledger_path
from tollway.ledger.audit import AuditLog
from tollway.ledger.audit_store import open_audit_store
from tollway.ledger.reader import open_reader
from tollway.observe import logs
from tollway.observe.admin_ui.access import AdminAccess
from tollway.observe.admin_ui.pages import AdminPages
from tollway.observe.admin_ui.session import CookieSigner, signing_key
from tollway.observe.oidc import OidcClient

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.config import Config
    from tollway.observe.observer import Observer


class AdminUi:
    def __init__(self, config: Config, admission: Admission, observer: Observer) -> None:
        settings = config.admin
        admin_key = resolve_admin_key(config.server)
        client_secret = _env(settings.oidc.client_secret_env, "admin.oidc.client_secret_env") if settings.oidc else None
        session_secret = _env(settings.session_secret_env, "admin.session_secret_env")
        self.enabled = admin_key is not None or settings.oidc is not None
        key = signing_key(session_secret, admin_key, client_secret)
        if self.enabled and key is None:
            raise ConfigError("admin.session_secret_env: a public OpenID Connect client with no admin key needs a "
                              "secret to sign UI sessions with; name an environment variable holding one")
        self._secrets = [s for s in (admin_key, client_secret, session_secret) if s]
        self._redactor: logs.SecretRedactor | None = None
        path = Path(config.ledger.path or default_ledger_path())
        self.admission = admission
        self.audit_log = AuditLog(open_audit_store(path, config.database_url),
                                  secrets=self._secrets)
        self.oidc = OidcClient(settings.oidc, client_secret) if settings.oidc is not None else None
        self.access = AdminAccess(admin_key, self.oidc, settings.oidc, CookieSigner(key or b""), self.audit_log)
        self.pages = AdminPages(self.access, settings.session_ttl_s, lambda: open_reader(path, config.database_url),
                                self._key_teams, lambda: [a.to_json() for a in observer.alerts.recent])

    def install(self, app: web.Application) -> None:
        if self.enabled:
            app[ADMIN_SIDE] = self.access
            app.router.add_routes(self.pages.routes())

    async def start(self) -> None:
        """Start the audit log's retries; keep the sign-on secrets out of every log line (the observer's
        redactor, installed before this, knows the admin key but not these)."""
        if self.enabled:
            self._redactor = logs.SecretRedactor(self._secrets)
            for handler in logging.getLogger().handlers:
                handler.addFilter(self._redactor)
            await self.audit_log.start()

    async def stop(self) -> None:
        if self.oidc is not None:
            await self.oidc.close()
        if self.enabled:
            await self.audit_log.close()
        if self._redactor is not None:
            logs.uninstall(self._redactor)

    async def reload_allowed(self, request: web.Request) -> None:
        """POST /admin/reload is the admin role's; raises GatewayError (audited) otherwise."""
        await self.access.refuse_write(request, "config.reloaded", [])

    async def reloaded(self, request: web.Request, ok: bool, message: str) -> None:
        await self.access.record(request, await self.access.caller(request), "config.reloaded", "config",
                                 {"result": "reloaded" if ok else "refused", "message": message},
                                 "ok" if ok else "failed")

    async def _key_teams(self) -> dict[str, str]:
        cache = self.admission.cache
        if cache is None:  # no key store: every request is keyless, in the "(none)" team
            return {}
        return {r.id: r.team for r in await cache.call(cache.store.list)}


def _env(name: str | None, setting: str) -> str | None:
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{setting}: environment variable {name} is not set")
    return value

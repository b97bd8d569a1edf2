"""The admin UI's routes: sign-in and sign-out, the page and its assets, and the read views it adds.

    GET  /admin/ui               the app (signed in) or the sign-in page
    GET  /admin/ui/login         start an OpenID Connect sign-in (authorization code with PKCE)
    GET  /admin/ui/callback      finish it: check state, exchange the code, check the ID token, map the role
    POST /admin/ui/login/key     sign in with the admin key (form field `key`)
    POST /admin/ui/logout        end the session (form field or header: the CSRF token)
    GET  /admin/ui/api/me        who is signed in, their role and the CSRF token
    GET  /admin/ui/api/requests  the request log (status, key, model, since, until, limit)
    GET  /admin/ui/api/spend     spend over time (by=key|team|user|tag, bucket=hour|day, since, until)
    GET  /admin/ui/api/audit     the audit log (since, actor, action, limit)
    GET  /admin/ui/api/alerts    recent alerts

Keys, budgets and events come from the admin API itself (accounting/admin_api.py), called by the page
with the session cookie and its CSRF token. The page is static HTML, CSS and vanilla JavaScript that
writes text only through textContent, so a key named `<script>` is shown, never run; the sign-in page
is rendered here with every value escaped.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from functools import cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from tollway.accounting.credentials import admin_key_matches
from tollway.core.errors import GatewayError, bad_request
from tollway.ledger.audit_store import AuditQuery
from tollway.observe.admin_ui import ledger_views
from tollway.observe.admin_ui.access import AdminAccess, principal_from_claims, session_data, session_principal
from tollway.observe.admin_ui.session import FLOW_COOKIE, FLOW_TTL_S, SESSION_COOKIE
from tollway.observe.oidc import OidcError
from tollway.observe.roles import admin_key_principal

if TYPE_CHECKING:
    from tollway.ledger.reader import LedgerReader

ASSETS = Path(__file__).with_name("assets")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
_NO_STORE = {"Cache-Control": "no-store"}
_HEADERS = {**_NO_STORE, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self' https: http:"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@cache
def _asset(name: str) -> tuple[bytes, str] | None:
    path = ASSETS / name
    if path.parent != ASSETS or path.suffix not in _TYPES or not path.is_file():
        return None
    return path.read_bytes(), _TYPES[path.suffix]


class AdminPages:
    def __init__(self, access: AdminAccess, session_ttl_s: int, reader: Callable[[], "LedgerReader"],
                 key_teams: Callable[[], Awaitable[dict[str, str]]], alerts: Callable[[], list[dict]]) -> None:
        self.access = access
        self.ttl = session_ttl_s
        self.reader = reader
        self.key_teams = key_teams
        self.alerts = alerts

    def routes(self) -> list[web.RouteDef]:
        api = self._api
        return [web.get("/admin/ui", self._page), web.get("/admin/ui/", self._page),
                web.get("/admin/ui/login", self._login), web.get("/admin/ui/callback", self._callback),
                web.post("/admin/ui/login/key", self._login_key), web.post("/admin/ui/logout", self._logout),
                web.get("/admin/ui/assets/{name}", self._static),
                web.get("/admin/ui/api/me", api(self._me)), web.get("/admin/ui/api/requests", api(self._requests)),
                web.get("/admin/ui/api/spend", api(self._spend)), web.get("/admin/ui/api/audit", api(self._audit)),
                web.get("/admin/ui/api/alerts", api(self._alerts))]

    async def _page(self, request: web.Request) -> web.StreamResponse:
        if self.access.signer.read("session", request.cookies.get(SESSION_COOKIE)) is None:
            return _sign_in_page(self.access.oidc is not None, self.access.admin_key is not None, "")
        page, _ = _asset("index.html")  # type: ignore[misc]
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if self.access.oidc is None:
            return _sign_in_page(False, self.access.admin_key is not None, "single sign-on is not configured "
                                 "(admin.oidc in the config)", 404)
        state, nonce, verifier = (secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))
        redirect = _redirect(request, self.access.oidc.settings.redirect)
        try:
            url = await self.access.oidc.authorization_url(state, nonce, verifier, redirect)
        except OidcError as exc:
            return _sign_in_page(True, self.access.admin_key is not None, str(exc), 502)
        response = web.HTTPSeeOther(location=url)
        flow = self.access.signer.sign("flow", {"state": state, "nonce": nonce, "verifier": verifier,
                                                       "redirect": redirect}, FLOW_TTL_S)
        _set_cookie(response, request, FLOW_COOKIE, flow, FLOW_TTL_S)
        return response

    async def _callback(self, request: web.Request) -> web.StreamResponse:
        oidc, settings = self.access.oidc, self.access.oidc_settings
        if oidc is None or settings is None:
            raise web.HTTPNotFound()
        flow = self.access.signer.read("flow", request.cookies.get(FLOW_COOKIE))
        if "error" in request.query:
            return await self._refused(request, f"the identity provider said {request.query['error']}: "
                                                f"{request.query.get('error_description', '')}")
        if flow is None or not secrets.compare_digest(request.query.get("state", ""), flow["state"]):
            return await self._refused(request, "this sign-in was not started here or took too long; sign in again")
        try:
            claims = await oidc.sign_in(request.query.get("code", ""), flow["verifier"], flow["nonce"],
                                        flow["redirect"])
            principal = principal_from_claims(claims, settings, secrets.token_urlsafe(24))
        except OidcError as exc:
            return await self._refused(request, str(exc))
        except GatewayError as exc:  # signed in, but the account maps to no role
            return await self._refused(request, exc.message, 403)
        await self.access.record(request, principal, "login", principal.email or principal.subject,
                                 {"method": "oidc", "role": principal.role, "teams": sorted(principal.teams)})
        return self._signed_in(request, principal)

    async def _login_key(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = str(form.get("key", ""))
        if not admin_key_matches(self.access.admin_key, given):
            return await self._refused(request, "wrong admin key", 401, method="admin_key")
        principal = replace(admin_key_principal(given), csrf=secrets.token_urlsafe(24))
        await self.access.record(request, principal, "login", "", {"method": "admin_key"})
        return self._signed_in(request, principal)

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
        session = self.access.signer.read("session", request.cookies.get(SESSION_COOKIE))
        if session is None or not token or not secrets.compare_digest(token, session["c"]):
            return _json_error(GatewayError(403, "sign-out needs the session's CSRF token", "permission_error",
                                            "csrf_failed"))
        principal = session_principal(session)
        await self.access.record(request, principal, "logout", principal.email or principal.subject, {})
        response = web.HTTPSeeOther(location="/admin/ui")
        response.del_cookie(SESSION_COOKIE, path="/admin")
        return response

    def _signed_in(self, request: web.Request, principal) -> web.StreamResponse:
        response = web.HTTPSeeOther(location="/admin/ui")
        _set_cookie(response, request, SESSION_COOKIE,
                    self.access.signer.sign("session", session_data(principal), self.ttl), self.ttl)
        response.del_cookie(FLOW_COOKIE, path="/admin")
        return response

    async def _refused(self, request: web.Request, reason: str, status: int = 401,
                       method: str = "oidc") -> web.StreamResponse:
        await self.access.record(request, None, "login", "", {"method": method, "reason": reason}, "refused")
        page = _sign_in_page(self.access.oidc is not None, self.access.admin_key is not None, reason, status)
        page.del_cookie(FLOW_COOKIE, path="/admin")
        return page

    async def _static(self, request: web.Request) -> web.StreamResponse:
        found = _asset(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, content_type=content_type, headers=_NO_STORE)

    def _api(self, handler: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                await self.access.caller(request)
                return web.Response(body=orjson.dumps(await handler(request)), content_type="application/json",
                                    headers=_NO_STORE)
            except GatewayError as exc:
                return _json_error(exc)
        return run

    async def _me(self, request: web.Request) -> dict:
        """The signed-in caller, and which optional admin API routes this gateway has (the UI adapts)."""
        paths = {resource.canonical for resource in request.app.router.resources()}
        return {**(await self.access.caller(request)).public(), "features": {"teams": "/admin/teams" in paths}}

    async def _requests(self, request: web.Request) -> dict:
        wanted = ledger_views.log_filter(dict(request.query))
        rows = await asyncio.to_thread(lambda: ledger_views.request_log(self.reader(), wanted))
        return {"object": "list", "data": rows}

    async def _spend(self, request: web.Request) -> dict:
        query = dict(request.query)
        since, until = ledger_views.window(query, timedelta(days=7))
        teams = await self.key_teams() if query.get("by") == "team" else {}
        return await asyncio.to_thread(lambda: ledger_views.spend(
            self.reader(), query.get("by", "key"), query.get("bucket", "day"), since, until, teams))

    async def _audit(self, request: web.Request) -> dict:
        query = dict(request.query)
        since = ledger_views.parse_time(query.get("since"), "since")
        try:
            limit = int(query.get("limit", "200"))
        except ValueError:
            raise bad_request("limit must be a whole number", "limit") from None
        rows = await self.access.audit_log.read(AuditQuery(since, query.get("actor") or None,
                                                           query.get("action") or None, max(1, min(limit, 1000))))
        return {"object": "list", "data": rows}

    async def _alerts(self, request: web.Request) -> dict:
        return {"object": "list", "data": self.alerts()}


def _redirect(request: web.Request, configured: str) -> str:
    """The callback URL: as configured, or a path (e.g. /admin/ui/callback) on the origin the browser used."""
    if not configured.startswith("/"):
        return configured
    scheme = "https" if request.secure or request.headers.get("X-Forwarded-Proto") == "https" else "http"
    return f"{scheme}://{request.host}{configured}"


def _set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, ttl_s: int) -> None:
    response.set_cookie(name, value, max_age=ttl_s, path="/admin", httponly=True, samesite="Lax",
                        secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https")


def _json_error(exc: GatewayError) -> web.Response:
    return exc.response(_NO_STORE)


def _sign_in_page(sso: bool, key: bool, error: str, status: int = 200) -> web.Response:
    parts = ["<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>",
             "<title>tollway admin: sign in</title><link rel=stylesheet href='/admin/ui/assets/admin.css'>",
             "<main class=signin><h1>tollway admin</h1>"]
    if error:
        parts.append(f"<p class=error id=signin-error>{escape(error)}</p>")
    if sso:
        parts.append("<p><a class=button id=sso href='/admin/ui/login'>Sign in with single sign-on</a></p>")
    if key:
        parts.append("<form method=post action='/admin/ui/login/key' id=key-form><label>Admin key "
                     "<input type=password name=key autocomplete=off required></label> "
                     "<button type=submit>Sign in</button></form>")
    if not (sso or key):
        parts.append("<p>The admin side is off: set server.admin_key_env or admin.oidc in the config.</p>")
    parts.append("</main></html>")
    return web.Response(status=status, body="".join(parts).encode(), content_type="text/html", charset="utf-8",
                        headers=_HEADERS)

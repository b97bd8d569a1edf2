"""Who is calling the admin side, what their role lets them do, and the audit entry of every decision.

A caller is one of: the admin key as a bearer token (role admin); an OpenID Connect token as a bearer
token (an ID token or access token, role from its claims, roles.py); or a browser session cookie made at
sign-in (pages.py). A cookie-borne call that changes something must also carry the session's CSRF token
in `X-CSRF-Token`, so another site cannot make a signed-in browser act (the cookie is also SameSite=Lax).
Every refusal (no or a bad credential: 401; a bad CSRF token, a role that may not: 403) and every done
write is recorded in the audit log before the answer is sent.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from tollway.accounting.admin_api import AUDITED, request_key
from tollway.accounting.credentials import admin_key_matches, bearer_token
from tollway.core.errors import GatewayError
from tollway.ledger.audit import AuditEntry, AuditLog, changed_fields
from tollway.observe.admin_ui.session import SESSION_COOKIE, CookieSigner
from tollway.observe.admin_ui.settings import OidcSettings
from tollway.observe.oidc import OidcClient, OidcError
from tollway.observe.roles import Principal, admin_key_principal, forbidden, role_of

PRINCIPAL = request_key("tollway_admin_principal", Principal)  # a request's caller, once known
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRF-Token"


class AdminAccess:
    """The gateway's admin side (accounting.admin_api.AdminSide), shared by the admin API and the UI."""

    def __init__(self, admin_key: str | None, oidc: OidcClient | None, oidc_settings: OidcSettings | None,
                 signer: CookieSigner, audit_log: AuditLog) -> None:
        self.admin_key = admin_key
        self.oidc = oidc
        self.oidc_settings = oidc_settings
        self.signer = signer
        self.audit_log = audit_log

    async def caller(self, request: web.Request) -> Principal:
        known = request.get(PRINCIPAL)
        if known is not None:
            return known
        try:
            principal = await self._identify(request)
        except GatewayError as exc:
            await self.record(request, None, "admin.refused", request.path, {"status": exc.status,
                                                                               "reason": exc.message}, "refused")
            raise
        request[PRINCIPAL] = principal
        return principal

    async def refuse_write(self, request: web.Request, action: str, teams: list[str]) -> None:
        principal = await self.caller(request)
        refusal = principal.refusal(action, teams)
        if refusal is not None:
            await self.record(request, principal, action, ",".join(t or "(no team)" for t in teams),
                              {"status": 403, "reason": refusal.message}, "refused")
            raise refusal

    async def audit(self, request: web.Request, action: str, target: str, before: dict | None,
                    after: dict | None) -> None:
        await self.record(request, await self.caller(request), action, target, changed_fields(before, after))
        request[AUDITED] = True

    async def record(self, request: web.Request, principal: Principal | None, action: str, target: str,
                     diff: dict[str, Any], outcome: str = "ok") -> None:
        who = principal or Principal("anonymous", "", "")
        forwarded = request.headers.get("X-Forwarded-For", "")
        client = (request.remote or "") + (f" (forwarded for {forwarded[:100]})" if forwarded else "")
        await self.audit_log.record(AuditEntry(
            action=action, actor_kind=who.kind, actor=who.subject, outcome=outcome, target=target,
            email=who.email, role=who.role, diff=diff, client=client,
            user_agent=request.headers.get("User-Agent", "")))

    async def _identify(self, request: web.Request) -> Principal:
        token = bearer_token(request)  # Authorization: Bearer, or x-api-key / api-key as the client API takes
        if token:
            return await self._bearer(token)
        session = self.signer.read("session", request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise _unauthenticated(self.oidc is not None)
        principal = session_principal(session)
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not given or not hmac.compare_digest(given, principal.csrf):
                raise GatewayError(403, f"missing or wrong CSRF token: a browser session's writes must send the "
                                        f"{CSRF_HEADER} header the admin UI holds", "permission_error", "csrf_failed")
        return principal

    async def _bearer(self, token: str) -> Principal:
        if admin_key_matches(self.admin_key, token):
            return admin_key_principal(token)
        if self.oidc is None or self.oidc_settings is None:
            raise _unauthenticated(False)
        try:
            claims = await self.oidc.verify_bearer(token)
        except OidcError as exc:
            raise GatewayError(401, f"OpenID Connect token refused: {exc}", "authentication_error",
                               "invalid_admin_token") from None
        return principal_from_claims(claims, self.oidc_settings)


def principal_from_claims(claims: dict[str, Any], settings: OidcSettings, csrf: str = "") -> Principal:
    """The caller an OpenID Connect account is, or 403 when its role claim maps to no role."""
    granted = role_of(claims, settings.role_claim, settings.roles)
    if granted is None:
        values = claims.get(settings.role_claim)
        raise forbidden(f"account {claims.get('email') or claims.get('sub')} has no tollway role: its "
                        f"{settings.role_claim!r} claim ({values!r}) matches nothing in admin.oidc.roles")
    role, teams = granted
    return Principal("oidc", str(claims["sub"]), role, str(claims.get("email") or ""),
                     str(claims.get("name") or ""), teams, csrf)


def session_principal(session: dict[str, Any]) -> Principal:
    return Principal(session["k"], session["s"], session["r"], session.get("e", ""), session.get("n", ""),
                     frozenset(session.get("t", [])), session["c"], via_cookie=True)


def session_data(principal: Principal) -> dict[str, Any]:
    return {"k": principal.kind, "s": principal.subject, "r": principal.role, "e": principal.email,
            "n": principal.name, "t": sorted(principal.teams), "c": principal.csrf}


def _unauthenticated(oidc: bool) -> GatewayError:
    also = " or an OpenID Connect ID/access token" if oidc else ""
    return GatewayError(401, f"The admin API needs the admin key as 'Authorization: Bearer <key>'{also}; "
                             "a browser signs in at /admin/ui.", "authentication_error", "invalid_admin_key")

"""Who may see the dashboard (and, if asked, /metrics): the holder of the admin key.

The key is read from the env var named by `server.admin_key_env`. A browser logs in once with
`/dashboard?key=...`: the answer sets an HttpOnly, SameSite=Strict cookie and redirects to the bare URL,
so the key leaves the address bar and history. The cookie holds an HMAC of the key, not the key: it is
worthless elsewhere and stops working when the key is rotated. Scripts send `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from tollway.core.errors import GatewayError

COOKIE = "tollway_admin"
_COOKIE_PURPOSE = b"tollway-dashboard-session-v1"


class AdminGate:
    def __init__(self, admin_key: str | None) -> None:
        self._key = admin_key
        self._token = hmac.new(admin_key.encode(), _COOKIE_PURPOSE, hashlib.sha256).hexdigest() if admin_key else ""

    @property
    def configured(self) -> bool:
        return self._key is not None

    def check(self, request: web.Request) -> None:
        """Raise a GatewayError (403 when no admin key is configured, 401 for a wrong or missing one)."""
        if self._key is None:
            raise _not_configured()
        if self._matches_bearer(request) or hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), self._token.encode()):
            return
        raise _wrong_key()

    def login(self, request: web.Request) -> web.Response | None:
        """For `?key=...`: a redirect that sets the session cookie, or None when there is no key param."""
        given = request.query.get("key")
        if given is None:
            return None
        if self._key is None:
            raise _not_configured()
        if not hmac.compare_digest(given.encode(), self._key.encode()):
            raise _wrong_key()
        response = web.HTTPSeeOther(location=request.path)
        response.set_cookie(COOKIE, self._token, httponly=True, samesite="Strict", path="/",
                            secure=request.secure)
        return response

    def _matches_bearer(self, request: web.Request) -> bool:
        value = request.headers.get("Authorization", "")
        if value[:7].lower() != "bearer ":
            return False
        return hmac.compare_digest(value[7:].strip().encode(), (self._key or "").encode())


def _not_configured() -> GatewayError:
    return GatewayError(403, "The dashboard needs an admin key: set server.admin_key_env in the config to the name "
                             "of an environment variable holding it.", "permission_error", "admin_key_not_configured")


def _wrong_key() -> GatewayError:
    return GatewayError(401, "Admin key required: send `Authorization: Bearer <admin key>`, or open "
                             "/dashboard?key=<admin key> once in a browser.", "authentication_error", "invalid_admin_key")

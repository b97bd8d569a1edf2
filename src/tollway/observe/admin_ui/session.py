"""Signed cookies for the admin UI: the session of a signed-in user, and the state of a sign-in in flight.

A cookie holds its data in the clear (base64url JSON) with an HMAC-SHA256 of it, so the gateway keeps no
session table and every replica and worker reads any replica's cookie; one that was changed, made
elsewhere or expired is no cookie at all. Each kind of cookie is signed under its own purpose, so a
sign-in cookie can never pass as a session. A session lasts `admin.session_ttl_s`; a role changed at the
identity provider applies at the next sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson

SESSION_COOKIE = "tollway_admin_session"
FLOW_COOKIE = "tollway_oidc_flow"
FLOW_TTL_S = 600


class CookieSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, purpose: str, data: dict[str, Any], ttl_s: int) -> str:
        body = _b64(orjson.dumps({**data, "exp": int(time.time()) + ttl_s}))
        return f"{body}.{self._mac(purpose, body)}"

    def read(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        """The cookie's data, or None when it is missing, forged, made for another purpose or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or data["exp"] < time.time():
            return None
        return data

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\0{body}".encode(), hashlib.sha256).digest())


def signing_key(explicit: str | None, admin_key: str | None, client_secret: str | None) -> bytes | None:
    """The session signing key: `admin.session_secret_env`'s value, else one derived from the admin key
    and the client secret (the same on every replica that shares them); None when there is nothing secret."""
    if explicit:
        return hashlib.sha256(b"tollway-admin-session\0" + explicit.encode()).digest()
    if not (admin_key or client_secret):
        return None
    material = f"{admin_key or ''}\0{client_secret or ''}".encode()
    return hmac.new(material, b"tollway-admin-session-v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

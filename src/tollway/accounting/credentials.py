"""What a caller presents: the bearer token of a request, and the admin key it is compared with.

One place for both, because the client API, the admin API and the dashboard all read them: the token
from `Authorization: Bearer <token>` (or Anthropic-style `x-api-key`, what the anthropic SDK and Claude
Code send, or Azure-style `api-key`), the admin key from the environment variable named by
`server.admin_key_env`, compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Protocol

from tollway.config import ConfigError, ServerSettings


class Presented(Protocol):
    """What a caller's credentials are read from: an aiohttp request, or the gateway's exchange."""

    @property
    def headers(self) -> Mapping[str, str]: ...


def bearer_token(request: Presented) -> str:
    """The token `request` (anything with `.headers`) presents. Header names are looked up in lower case:
    the hot-path server hands over lower-cased names, aiohttp's headers ignore case."""
    value = request.headers.get("authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key", "")


def resolve_admin_key(server: ServerSettings) -> str | None:
    """The admin key from `server.admin_key_env`; None when the admin API and dashboard are off."""
    env = server.admin_key_env
    if not env:
        return None
    value = os.environ.get(env, "").strip()
    if not value:
        raise ConfigError(f"server.admin_key_env: environment variable {env} is not set")
    return value


def admin_key_matches(admin_key: str | None, token: str) -> bool:
    return admin_key is not None and hmac.compare_digest(token.encode(), admin_key.encode())

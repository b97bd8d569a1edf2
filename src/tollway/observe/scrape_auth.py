"""Who may scrape /metrics: anyone, or, with `observe.metrics.token_env`, the holder of that token.

/metrics names route groups, deployments, providers, budgets and spend: on a gateway reachable beyond the
monitoring network that is worth a token. The token is a bearer token, as Prometheus sends one from
`authorization.credentials_file`; it is compared in constant time, and a refusal is an OpenAI-shaped 401
that says how to send it and never echoes what was sent. The token is separate from the admin key, so a
Prometheus server holds only the right to read figures.
"""

from __future__ import annotations

import hmac
import os

from aiohttp import web

from tollway.core.errors import GatewayError
from tollway.observe.settings import MetricsSettings


class ScrapeTokenError(ValueError):
    """The configured token cannot be read; the message names the setting and the variable, not a value."""


def scrape_token(settings: MetricsSettings) -> str | None:
    """The token /metrics requires, or None when it is open."""
    if not settings.enabled or settings.token_env is None:
        return None
    value = os.environ.get(settings.token_env, "").strip()
    if not value:
        raise ScrapeTokenError(f"observe.metrics.token_env: environment variable {settings.token_env} is not set")
    return value


class ScrapeGate:
    """Checks a scrape's `Authorization: Bearer <token>` when a token is configured."""

    __slots__ = ("_token",)

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def refusal(self, request: web.Request) -> web.Response | None:
        """None when the scrape may proceed; otherwise the 401 to answer with."""
        if self._token is None:
            return None
        value = request.headers.get("Authorization", "")
        given = value[7:].strip().encode() if value[:7].lower() == "bearer " else b""
        if given and hmac.compare_digest(given, self._token):
            return None
        error = GatewayError(401, "/metrics needs its scrape token: send `Authorization: Bearer <token>` (the "
                                  "value of the variable named by observe.metrics.token_env; in Prometheus, "
                                  "`authorization: {credentials_file: ...}`).",
                             "authentication_error", "invalid_metrics_token")
        return error.response({"WWW-Authenticate": 'Bearer realm="tollway metrics"'})

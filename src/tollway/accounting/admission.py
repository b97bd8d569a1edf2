"""Admission: who may send a request, and whether it fits their limits and budget.

The gateway calls `authenticate` before reading the body (a bad key costs nothing), `reserve` once the
request is parsed and routed to a group (the most it can cost is held against budgets and limits), and
`settle` exactly once for every reserved request, success or failure, with its ledger row (the real cost
replaces the hold). This default accepts the static keys of `server.api_keys_env` and enforces no limits;
virtual keys, rate limits and budgets replace it (see docs/budgets.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tollway.accounting.ledger_schema import LedgerRow
from tollway.config import Config, resolve_client_keys
from tollway.gateway.errors import unauthorized
from tollway.gateway.request import ClientRequest


@dataclass(slots=True)
class Key:
    """The caller, as far as routing and accounting care."""

    id: str = ""
    team: str = ""
    allowed_models: frozenset[str] | None = None  # None: every model
    residency: frozenset[str] | None = None       # None: any jurisdiction


@dataclass(slots=True)
class Ticket:
    """What admission granted one request; handed back at settle."""

    key: Key
    held_usd: str = "0"
    held_tokens: int = 0
    extra: dict = field(default_factory=dict)


ANONYMOUS = Key()


class Admission:
    def __init__(self, config: Config) -> None:
        self._keys = resolve_client_keys(config.server)

    async def start(self, app: web.Application) -> None:
        """Open connections (e.g. Redis); called at gateway start-up."""

    async def stop(self) -> None:
        """Release what start() opened; called at shutdown after in-flight requests finished."""

    def routes(self) -> list[web.RouteDef]:
        """Extra HTTP routes (e.g. the admin API)."""
        return []

    async def authenticate(self, request: web.Request) -> Key:
        """Raise GatewayError(401) for a missing or wrong key."""
        if not self._keys:
            return ANONYMOUS
        if bearer_token(request) not in self._keys:
            raise unauthorized()
        return ANONYMOUS

    async def reserve(self, key: Key, creq: ClientRequest, group: str) -> Ticket:
        """Hold the most this request can cost; raise GatewayError(429 budget_exceeded / rate_limited) if it can't."""
        return Ticket(key)

    async def settle(self, ticket: Ticket, row: LedgerRow) -> None:
        """Replace the hold with the real cost and tokens of `row`; never raises."""


def bearer_token(request: web.Request) -> str:
    value = request.headers.get("Authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else request.headers.get("api-key", "")

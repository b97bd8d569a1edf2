"""The observer: sees every finished request's ledger row, off the request path's critical work.

The gateway hands each row to `record` right after queueing it for the ledger; metrics, alerts and the
dashboard build on this. The default does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tollway.accounting.ledger_schema import LedgerRow

if TYPE_CHECKING:
    from tollway.gateway.app import Gateway


class Observer:
    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway

    async def start(self, app: web.Application) -> None:
        """Start background work (alert evaluation, webhooks)."""

    async def stop(self) -> None:
        """Flush and stop."""

    def routes(self) -> list[web.RouteDef]:
        """Extra HTTP routes (e.g. /metrics, /dashboard)."""
        return []

    def record(self, row: LedgerRow) -> None:
        """Called once per request, after its row is queued. Must be cheap and never raise."""

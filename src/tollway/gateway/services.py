"""What one request needs of the process, handed to each RequestLife as one frozen record.

The composition root (app.py) builds the record at start-up, and a reload (reload.py) builds a new one
and swaps the reference; a request takes the record current when it starts and reads `services.<part>`
(one slot load on the record it already holds) instead of reaching through the whole `Gateway`. So a request's needs are
listed here and nowhere else, a test can hand a request exactly the parts it wants, and nothing on the
request path can reach the application's start-up or admin machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.config import RetrySettings
    from tollway.ledger.drain import LedgerDrain
    from tollway.observe.observer import Observer
    from tollway.routing.router import Router
    from tollway.routing.table import RouteTable
    from tollway.upstream.http_client import HttpClient


class InFlight:
    """Requests between arrival and their ledger row: the handler counts, gauges and shutdown read it."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def current(self) -> int:
        """The count, as a reading a gauge can hold without holding the counter."""
        return self.count


@dataclass(frozen=True, slots=True)
class RequestServices:
    """Exactly what a request's lifecycle uses; replaced whole, never changed, when the config reloads."""

    admission: Admission
    table: RouteTable
    router: Router
    ledger: LedgerDrain
    pricer: DeploymentPricer
    upstream: HttpClient
    observer: Observer
    retry: RetrySettings
    request_deadline_s: float
    in_flight: InFlight

"""The router: from a route group and a request, the ordered plan of deployments to try.

This default keeps the group's configured order (`strategy: priority`) and drops deployments the caller's
key may not use. Strategies, request filters, residency and explanations build on this interface.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tollway.accounting.admission import Key
from tollway.config import Config
from tollway.gateway.request import ClientRequest
from tollway.routing.table import RoutedDeployment, RouteGroupEntry, RouteTable


@dataclass(slots=True)
class RoutePlan:
    deployments: list[RoutedDeployment]
    reason: str  # a few words for the x-tollway-route header


class Router:
    def __init__(self, config: Config, table: RouteTable) -> None:
        self.config = config
        self.table = table

    async def start(self, app: web.Application) -> None:
        """Start background work (e.g. scraping backend metrics)."""

    async def stop(self) -> None:
        """Stop what start() began."""

    def plan(self, group: RouteGroupEntry, creq: ClientRequest, key: Key, request: web.Request) -> RoutePlan:
        return RoutePlan(list(group.deployments), "priority: configured order")

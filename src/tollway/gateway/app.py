"""The gateway process: its aiohttp application, shared state, and start-up and shutdown.

State that lives for the whole process (the routing table, the pricer, the ledger writer, the pooled
upstream client) is built here once, and each part is handed what it uses: the observer its settings, the
table, the ledger and admission's budget view; each request a RequestLife (handler.py) holding one
`RequestServices` record (services.py) built here, never the Gateway itself. The OpenAI endpoints
are served by the raw httptools server (http_server.py); the aiohttp application serves everything else
(models, health, metrics, admin, dashboard) and, through an adapter, the OpenAI endpoints on connections
it already owns. Upstream calls on the request path use the lean `HttpClient`; `session` (aiohttp) is
for work off that path (metric scrapes, webhooks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import aiohttp
import orjson
from aiohttp import web

from tollway import __version__
from tollway.accounting.admission import Admission
from tollway.accounting.credentials import Presented
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config, default_ledger_path
from tollway.core.errors import GatewayError, bad_request
from tollway.gateway import edge
from tollway.gateway.batch_line import BatchService
from tollway.gateway.client_dialects.openai_responses import RESPONSES, stored_response_answer
from tollway.gateway.exchange import AiohttpExchange
from tollway.gateway.handler import RequestLife
from tollway.gateway.managed import ManagedBackends
from tollway.gateway.reload import ReloadResult, reload_gateway
from tollway.gateway.services import InFlight, RequestServices
from tollway.ledger.sqlite import open_ledger
from tollway.ledger.stored_responses import StoredResponses
from tollway.observe.admin_ui.side import AdminUi
from tollway.observe.observer import Observer
from tollway.observe.worker_metrics import fleet_dir
from tollway.routing.router import Router
from tollway.routing.table import RouteTable
from tollway.upstream.http_client import HttpClient

log = logging.getLogger("tollway.gateway")
_JSON = {"Content-Type": "application/json; charset=utf-8"}  # as aiohttp's json_response labelled these


class Gateway:
    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.pricer = DeploymentPricer(Catalog.from_config_section(
            {"catalog": config.catalog, "cny_per_usd": config.cny_per_usd}))
        self.table = RouteTable(config, self.pricer.catalog)  # the catalog fills facts the config leaves out
        self.admission = Admission(config, self.pricer)
        self.ledger = open_ledger(config)  # SQLite, or PostgreSQL with database_url
        self.stored_responses = StoredResponses(config.ledger.path or default_ledger_path(),
                                                config.responses.retention_days, database_url=config.database_url)
        RESPONSES.stored = self.stored_responses
        self.in_flight = InFlight()
        self.observer = Observer(config.observe, config.server, self.table, self.pricer, self.admission,
                                 self.ledger, self.in_flight.current)
        self.admin = AdminUi(config, self.admission, self.observer)  # roles, sign-on, audit, /admin/ui
        self.managed = ManagedBackends(self.table)
        self.upstream = HttpClient()
        self.router = Router(self.table, self.pricer, self.upstream, self.ledger.append)
        self.session: aiohttp.ClientSession = None  # type: ignore[assignment]  # made on start-up, in the loop
        self.services = RequestServices(self.admission, self.table, self.router, self.ledger, self.pricer,
                                        self.upstream, self.observer, config.retry,
                                        config.server.request_deadline_s, self.in_flight)
        self.batch = BatchService(self) if config.batch.enabled else None  # /v1/files, /v1/batches, the executor
        self.overrides: Callable[[Config], Config] = lambda c: c  # the command line's, applied again on reload
        self._reloading = asyncio.Lock()

    async def reload(self) -> ReloadResult:
        """Re-read the config and swap it in atomically, or refuse it and keep the old (gateway/reload.py)."""
        async with self._reloading:
            return await reload_gateway(self, self.overrides)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.server.max_body_bytes + 1,
                              middlewares=[self._edge_refusals])
        app.router.add_get(edge.EDGE_ERROR_PREFIX + "{token}", self._handed_over)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/v1/responses/{response_id}", self._stored_response)
        app.router.add_delete("/v1/responses/{response_id}", self._stored_response)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/favicon.ico", self._no_icon)
        app.router.add_post("/admin/reload", self._admin_reload)
        app.router.add_routes([*self.admission.routes(), *self.observer.routes()])
        self.admin.install(app)
        if self.batch is not None:
            app.router.add_routes(self.batch.api.routes(self._answer_locally))
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        self._aiohttp_app = app
        return app

    def aiohttp_paths(self) -> list[str]:
        """The canonical paths of the aiohttp application's routes (the lean server sends it only these)."""
        return [resource.canonical for resource in self._aiohttp_app.router.resources()]

    @web.middleware
    async def _edge_refusals(self, request: web.Request, handler) -> web.StreamResponse:
        """aiohttp's own 404/405 (plain text) become the edge's OpenAI-shaped ones, with their rows."""
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            path = request.path.encode("latin-1", "replace")
            return await self._refuse(request, edge.method_not_allowed(request.method.encode(), path, allowed),
                                      edge.answering_endpoint(path))
        except web.HTTPNotFound:
            return await self._refuse(request, edge.not_found(request.method.encode(),
                                                              request.path.encode("latin-1", "replace")))

    async def _handed_over(self, request: web.Request) -> web.StreamResponse:
        """A refusal the lean server found on a connection aiohttp answers (edge.hand_over)."""
        handed = edge.take_handed_over(request.match_info["token"])
        if handed is None:
            return await self._refuse(request, edge.not_found(b"GET", request.path.encode("latin-1", "replace")))
        return await self._refuse(request, *handed)

    async def _refuse(self, request: web.Request, error: GatewayError, answer_as: str | None = None
                      ) -> web.StreamResponse:
        exchange = AiohttpExchange(request, self.config.server.max_body_bytes)
        await RequestLife(self.services, exchange, edge.REFUSAL_ENDPOINT, answer_as).refuse(error)
        assert exchange.response is not None
        return exchange.response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._hot(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._hot(request, "completions")

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._hot(request, "embeddings")

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._hot(request, "messages")

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        return await self._hot(request, "messages.count_tokens")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._hot(request, "responses")

    async def _stored_response(self, request: web.Request) -> web.StreamResponse:
        """GET/DELETE /v1/responses/{id}: answered from the stored responses, each with its own row
        (endpoint responses.get / responses.delete, no cost)."""
        exchange = AiohttpExchange(request, self.config.server.max_body_bytes)
        method, response_id = request.method, request.match_info["response_id"]
        await RequestLife(self.services, exchange, f"responses.{method.lower()}").answer_locally(
            lambda key: stored_response_answer(method, response_id, key.id))
        assert exchange.response is not None
        return exchange.response

    async def _answer_locally(self, request: web.Request, endpoint: str, answer) -> web.StreamResponse:
        """A Batch API call: authenticated, answered from the gateway's own state, with its own row."""
        exchange = AiohttpExchange(request, self.config.server.max_body_bytes)
        await RequestLife(self.services, exchange, endpoint).answer_locally(answer)
        assert exchange.response is not None
        return exchange.response

    async def _hot(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        exchange = AiohttpExchange(request, self.config.server.max_body_bytes)
        await RequestLife(self.services, exchange, endpoint).handle()
        assert exchange.response is not None, "RequestLife answers every request"
        return exchange.response

    async def _admin_reload(self, request: web.Request) -> web.Response:
        """POST /admin/reload (admin key): 200 with what now serves, or 400 with why the config was refused.
        Under --workers N the parent is signalled, so every worker reloads (after this one checked it)."""
        try:
            if self.admin.enabled:
                await self.admin.reload_allowed(request)
            else:
                self.observer.gate.check(request)
        except GatewayError as exc:
            return exc.response({})
        result = await self.reload()
        if self.admin.enabled:
            await self.admin.reloaded(request, result.ok, result.message)
        if not result.ok:
            return bad_request(f"config refused, the old one keeps serving: {result.message}",
                               code="invalid_config").response({})
        if fleet_dir() is not None:
            os.kill(os.getppid(), signal.SIGHUP)  # the parent forwards it to every worker, this one included
        return _response((200, _JSON, json.dumps({"status": "reloaded", "message": result.message}).encode()))

    async def _models(self, request: web.Request) -> web.Response:
        return _response(await self.models_answer(request))

    async def _healthz(self, request: web.Request) -> web.Response:
        return _response(self.simple_answer("/healthz"))

    async def _no_icon(self, request: web.Request) -> web.Response:
        """Browsers on the dashboard and the admin UI ask for an icon: none, and no refusal row for it."""
        return web.Response(status=204)

    async def _readyz(self, request: web.Request) -> web.Response:
        return _response(self.simple_answer("/readyz"))

    async def models_answer(self, request: Presented) -> tuple[int, dict[str, str], bytes]:
        """GET /v1/models for the caller: once virtual keys exist it needs a valid key (401 as on the
        OpenAI endpoints) and lists only the models that key may use (its `models`: names or route groups)."""
        services = self.services
        try:
            key = await services.admission.authenticate(request)
        except GatewayError as exc:
            return exc.rendered({})
        table = services.table
        allowed = key.record.models if key.record is not None else None
        names = table.public_names()
        if allowed:
            names = [n for n in names if n in allowed or getattr(table.group_for(n), "name", None) in allowed]
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "tollway"} for name in names]
        return 200, {"Content-Type": "application/json"}, orjson.dumps({"object": "list", "data": data})

    def simple_answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET /healthz, /readyz as status, headers, body: any server can send these, so the raw server
        answers them itself (and /v1/models, models_answer), so a client that lists models first stays on
        the lean path."""
        if path == "/healthz":
            return 200, _JSON, json.dumps({"status": "ok", "version": __version__}).encode()
        problems = self.managed.problems()
        if problems:
            return 503, _JSON, json.dumps({"status": "starting", "waiting_for": problems}).encode()
        accounting = self.ledger.problem()  # a gateway that cannot account for requests must not take them
        if accounting is not None:
            return 503, _JSON, json.dumps({"status": "accounting_stopped", "reason": accounting}).encode()
        return 200, _JSON, json.dumps({"status": "ready"}).encode()

    async def _start(self, app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(connector=connector, trust_env=True)  # HTTP(S)_PROXY, NO_PROXY
        await self.ledger.start()
        await self.stored_responses.start()
        await self.admission.start(app)
        await self.router.start(self.session)
        await self.observer.start(app)
        await self.admin.start()
        self.ledger.health.raise_alert = self.observer.alerts.raise_alert
        self.managed.start()
        if self.batch is not None:
            await self.batch.start(self.session)
        unpriced = self.pricer.unpriced(list(self.table.deployments.values()), datetime.now(timezone.utc))
        if unpriced:
            log.warning("no price known for deployments %s: their cost is recorded as 0; add a `price:` to "
                        "each in the config or a catalog entry", ", ".join(unpriced))
        log.info("tollway %s serving %s; ledger at %s", __version__, ", ".join(self.table.public_names()),
                 self.ledger.path)

    async def _stop(self, app: web.Application) -> None:
        if self.batch is not None:
            await self.batch.stop()  # first: lines in flight need routing and the ledger
        await self.managed.stop()
        await self.router.stop()
        await self.observer.stop()
        await self.admin.stop()
        await self.admission.stop()
        await self.ledger.close()
        await self.stored_responses.close()
        await self.session.close()
        await self.upstream.close()
        log.info("ledger flushed (%d rows written); stopped", self.ledger.written)


def _response(answer: tuple[int, dict[str, str], bytes]) -> web.Response:
    status, headers, body = answer
    return web.Response(status=status, headers=headers, body=body)

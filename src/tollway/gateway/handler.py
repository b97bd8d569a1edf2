"""One request's lifecycle: read, check, route, call (with failover), relay, settle, queue its ledger row.

Every path out of `handle`, success or failure, leaves exactly one ledger row: the row is built in a
`finally`, so a bad body, an unknown model, a failed walk, a cut stream and a client that hung up are all
accounted for. The row tells the truth by construction: a request starts as a 500 failure and becomes
`ok` only at the point its answer is handed to the client, so an exception nobody foresaw leaves a row
that says `error`/500 with the exception's class, which is also what the client is told. A request
refused before any endpoint took it (a malformed request, an unknown path) gets its row through `refuse`.

The sequence of one request, each step one call into the layer that owns it:
1. `admission.admit(exchange)` (accounting): who is calling (401 before the body is read), and which route
   groups the key is moved to now (a budget brownout), as a map applied to the group the request names;
2. parse the body, find the route group in the table, `router.plan(...)` (routing): the deployments to try;
3. `admission.reserve(key, request, group, plan)` (accounting): hold the most it can cost against limits
   and budgets (429 otherwise), and hand back the plan in the order to try (pacing's deployment first);
4. the failover walk and the upstream call (routing, upstream), relaying or answering;
5. `_account`: the ledger row, `router.finished`, `admission.settle(ticket, row, cost)` and
   `observer.record(row, cost)`. The cost is an exact Decimal from pricing to settle and the observer; it
   becomes text once, for the row and the `x-tollway-cost-usd` header.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import fields
from decimal import Decimal
from typing import TYPE_CHECKING, Awaitable, Callable

import orjson

from tollway.accounting.tickets import Key, Ticket
from tollway.catalog.cost import try_cost_usd
from tollway.core.attribution import NO_TAGS, TAGS_HEADER, attribution
from tollway.core.errors import GatewayError, internal_error, model_not_found
from tollway.core.money import decimal_text
from tollway.core.process_ids import ProcessIds
from tollway.core.request import ClientRequest, parse_request, prompt_text
from tollway.core.usage import Usage
from tollway.gateway.client_dialects import CLIENT_DIALECTS
from tollway.gateway.client_dialects.native import NativeRoutes
from tollway.gateway.edge import valid_request_id
from tollway.gateway.exchange import Exchange
from tollway.gateway.payloads import UpstreamPayloads
from tollway.gateway.row_text import features_json, iso_utc
from tollway.ledger.schema import LedgerRow
from tollway.providers.estimates import TextTally, answer_text_tally, estimated_usage
from tollway.routing.features import request_features
from tollway.routing.table import RoutedDeployment
from tollway.routing.walk import Walk
from tollway.upstream import calls
from tollway.upstream.relay import StreamRelay

if TYPE_CHECKING:
    from tollway.gateway.client_dialects import ClientDialect
    from tollway.gateway.services import RequestServices

log = logging.getLogger("tollway.gateway")
UNANSWERED = "the gateway failed before answering"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
# Request ids: a random per-process prefix and a counter; unique across replicas, and cheaper than uuid4.
_REQUEST_IDS = ProcessIds(width=10)
_NO_USAGE = Usage(source="")
_NOBODY = ("", NO_TAGS)
_ZERO = Decimal(0)
# LedgerRow is built positionally (a sixth of the keyword call's cost); this is the order that assumes.
_ROW_ORDER = ("id", "ts", "endpoint", "requested_model", "status", "http_status", "key_id", "route_group",
              "deployment", "provider", "upstream_model", "jurisdiction", "attempts", "prompt_tokens",
              "cached_tokens", "cache_write_tokens", "completion_tokens", "reasoning_tokens", "usage_source",
              "cost_usd", "ttft_ms", "latency_ms", "error", "streamed", "shadow", "priced", "system_fingerprint",
              "request_features", "end_user", "tags", "batch_id", "price_rate")
if tuple(f.name for f in fields(LedgerRow)) != _ROW_ORDER:
    raise RuntimeError("LedgerRow's fields changed order: update handler._ROW_ORDER and RequestLife._row")


class RequestLife:
    """The state of one request, from arrival to its ledger row."""

    __slots__ = ("services", "x", "endpoint", "request_id", "arrived", "started", "headers", "creq", "walk",
                 "deployment", "usage", "cost", "priced", "ttft", "status", "http_status", "error", "group",
                 "key", "ticket", "fingerprint", "plan_residency", "total", "streaming", "client", "wire",
                 "attribution")

    def __init__(self, services: "RequestServices", x: Exchange, endpoint: str, answer_as: str | None = None) -> None:
        self.services = services
        self.x = x
        self.endpoint = endpoint  # the client's endpoint, for the row
        # the client dialect (None: the client speaks the canonical chat dialect) and the endpoint upstreams
        # are called for; a refusal at the edge (endpoint "edge") answers in the dialect of the path it was for
        self.client = client = CLIENT_DIALECTS.get(answer_as or endpoint)
        self.wire = endpoint if client is None else client.wire_endpoint
        given = x.headers.get("x-request-id")
        self.request_id = given if valid_request_id(given) else next(_REQUEST_IDS)
        self.arrived = time.time_ns() // 1000  # UTC microseconds; a datetime only when pricing needs one
        self.started = asyncio.get_running_loop().time()
        self.headers = {"x-request-id": self.request_id}
        self.creq: ClientRequest | None = None
        self.walk: Walk | None = None
        self.deployment: RoutedDeployment | None = None
        self.usage: Usage | None = None
        self.cost = Decimal(0)
        self.priced = True
        self.ttft: float | None = None
        self.status, self.http_status, self.error, self.group = "error", 500, UNANSWERED, ""  # until answered
        self.streaming = False  # a 200 head went out: an error can no longer change the status line
        self.key: Key | None = None
        self.fingerprint = ""
        self.plan_residency: frozenset[str] | None = None
        self.ticket: Ticket | None = None
        self.total: tuple[Decimal, str, bool] | None = None  # the total cost, its text and priced flag, once made
        self.attribution = _NOBODY  # (end user, tags JSON), once the body is parsed

    async def handle(self) -> None:
        """Serve the request through its exchange. A whole answer is handed to the exchange after the
        row is queued and the budget settled, so a client's next request sees this one settled."""
        self.services.in_flight.count += 1
        try:
            reply = await self._serve()
            if reply is not None and self.x.client_gone():
                self.status, self.http_status, self.error = "cancelled", 499, "client disconnected"
        except GatewayError as exc:
            self._failed(exc)
            reply = None if self.streaming else self._rendered(exc)
        except asyncio.CancelledError:
            self.status, self.http_status, self.error = "cancelled", 499, "cancelled: client gone or shutting down"
            raise
        except Exception as exc:  # a bug: the client gets an OpenAI-shaped 500, the row says so
            reply = self._crashed(exc)
        finally:
            await self._account()
        if reply is not None:
            self.x.respond(*reply)

    async def refuse(self, error: GatewayError) -> None:
        """Answer a request refused before an endpoint took it (malformed, unknown path), with its row."""
        self.services.in_flight.count += 1
        self._failed(error)
        await self._account()
        self.x.respond(*self._rendered(error))

    async def answer_locally(self, answer: Callable[["Key"], Awaitable[tuple[int, dict[str, str], bytes]]]) -> None:
        """Answer from the gateway's own state (GET/DELETE /v1/responses/{id}): the caller is authenticated,
        no upstream is called and nothing is billed, and the row says what the client got."""
        self.services.in_flight.count += 1
        try:
            self.key = await self.services.admission.authenticate(self.x)
            status, headers, body = await answer(self.key)
            self.headers.update(headers)
            self.status, self.http_status, self.error = "ok", status, ""
            reply = (status, self.headers, body)
        except GatewayError as exc:
            self._failed(exc)
            reply = self._rendered(exc)
        except Exception as exc:  # a bug: an OpenAI-shaped 500, the row says so
            reply = self._crashed(exc) or self._rendered(internal_error())
        finally:
            await self._account()
        self.x.respond(*reply)

    def _rendered(self, error: GatewayError) -> tuple[int, dict[str, str], bytes]:
        """The error as the client's dialect shapes it."""
        if self.client is None:
            return error.rendered(self.headers)
        return self.client.error(error, self.headers)

    def _crashed(self, exc: Exception) -> tuple[int, dict[str, str], bytes] | None:
        log.exception("request %s failed inside the gateway", self.request_id)
        self.error = f"internal_error: {type(exc).__name__}"
        if self.streaming:  # the client has a 200 head and part of a stream: it is cut
            self.status, self.http_status = "stream_error", 200
            return None
        self.status, self.http_status = "error", 500
        return self._rendered(internal_error())

    async def _account(self) -> None:
        """Exactly once per request: ledger row, budget settlement, observers. Each step is guarded so a
        fault in one (logged) never costs the row or the budget settlement."""
        services = self.services
        services.in_flight.count -= 1
        try:
            row = self._row()
            cost = self.total[0]  # type: ignore[index]  # _row made it
        except Exception:
            log.exception("request %s: building its ledger row failed; a bare row is kept", self.request_id)
            cost, row = _ZERO, self._bare_row()  # the cost the bare row says
        services.ledger.append(row)
        try:
            services.router.finished(self.walk, row)
        except Exception:
            log.exception("request %s: routing bookkeeping failed", self.request_id)
        if self.ticket is not None:
            try:
                await services.admission.settle(self.ticket, row, cost)
            except Exception:
                log.exception("request %s: settling its budget hold failed", self.request_id)
        try:
            services.observer.record(row, cost)
        except Exception:
            log.exception("request %s: the observer failed on its row", self.request_id)

    async def _serve(self) -> tuple[int, dict[str, str], bytes] | None:
        """The whole answer, or None when it was streamed through the exchange."""
        services = self.services
        key, moved = await services.admission.admit(self.x)
        self.key = key
        client = self.client
        body = await self.x.read_body()
        self.creq = creq = parse_request(self.endpoint, body) if client is None else client.canonical(body)
        self.attribution = attribution(creq.body, self.x.headers.get(TAGS_HEADER))
        if creq.dialect_state is not None and client is not None:  # a stateful client dialect (Responses)
            await client.prepare(creq, key.id)
        table = services.table
        group = table.group_for(creq.model)
        if group is None:
            raise model_not_found(creq.model, table.public_names())
        if moved:  # a budget brownout serves this key from a cheaper group
            group = table.groups.get(moved.get(group.name, group.name), group)
        self.group = group.name
        if client is not None and client.counts_tokens:
            return self._counted(client)
        plan = await services.router.plan(group, creq, key, self.x)
        self.plan_residency = plan.residency
        self.headers["x-tollway-route"] = plan.reason
        self.walk = walk = Walk(services.retry, self.started + services.request_deadline_s, plan)
        self.ticket = ticket = await services.admission.reserve(key, creq, group.name, plan.deployments)
        plan.deployments = ticket.plan
        payloads = UpstreamPayloads(creq)
        # a client dialect served natively by upstreams of its own dialect (the same-dialect fast path)
        native = None if client is None or client.native is None else NativeRoutes(client.native, creq, payloads.for_)
        if creq.stream:
            await self._stream(plan.deployments, payloads, native)
            return None
        upstream, headers = services.upstream, self.x.headers
        dep, reply = await walk.run(creq.model, plan.deployments, (
            lambda d: calls.call(upstream, d, self.wire, payloads.for_(d), walk.deadline, client_headers=headers))
            if native is None else (lambda d: native.call(upstream, d, walk.deadline, headers)))
        self._served_by(dep)
        self.usage = self._usage_from_reply(dep, reply.body)
        self._settle()
        cost, priced = self._total_cost()
        cost = cost.normalize()  # the same Decimal the row's text says, for settle and the observer
        text = decimal_text(cost)
        self.total = (cost, text, priced)  # the row reuses it: no await between here and _account
        self.headers["x-tollway-cost-usd"] = text if priced else "unknown"
        self.ttft = asyncio.get_running_loop().time()
        self.headers["Content-Type"] = reply.content_type
        self.status, self.http_status, self.error = "ok", 200, ""
        if client is not None:
            if native is not None and native.serves(dep):
                return 200, self.headers, native.wire.answer(creq, reply.body)
            answer = client.answer(reply.body, self.usage, creq.model)
            if creq.dialect_state is not None:
                client.answered(creq, answer)
            return 200, self.headers, answer
        return 200, self.headers, reply.body

    def _counted(self, client: "ClientDialect") -> tuple[int, dict[str, str], bytes]:
        """A token count from the request alone: no upstream call, no cost."""
        assert self.creq is not None
        self.headers["Content-Type"] = "application/json"
        body = client.count(self.creq)
        self.status, self.http_status, self.error = "ok", 200, ""
        return 200, self.headers, body

    async def _stream(self, plan: list[RoutedDeployment], payloads: "UpstreamPayloads", native: NativeRoutes | None) -> None:
        assert self.creq is not None and self.walk is not None
        upstream, walk, headers = self.services.upstream, self.walk, self.x.headers
        dep, opened = await walk.run(self.creq.model, plan, (
            lambda d: calls.open_stream(upstream, d, self.wire, payloads.for_(d), walk.deadline,
                                        client_headers=headers))
            if native is None else (lambda d: native.open_stream(upstream, d, walk.deadline, headers)))
        self._served_by(dep)
        try:
            self.headers.update(_SSE_HEADERS)
            sink = await self.x.start_stream(self.headers)
        except (ConnectionResetError, OSError):
            opened.response.close()
            self.status, self.http_status, self.error = "cancelled", 499, "client disconnected"
            self.usage = estimated_usage(prompt_text(self.creq), TextTally())  # the prompt was read; nothing relayed
            self._settle()
            return None
        self.streaming = True
        translating = reader = error_event = None
        if native is not None and native.serves(dep):  # the upstream speaks the client's dialect: relayed as is
            reader, error_event = native.wire.stream_usage(dep), native.wire.error_event
        elif self.client is not None:  # the client's own events, translated from the chat stream as it comes
            sink = translating = self.client.stream_sink(sink, self.creq.model, dep.dialect.usage_from_body)
        result = await StreamRelay(dep.dialect, self.creq.client_wants_usage, dep.between_chunks_s, error_event,
                                   reader).run(opened, sink)
        if native is not None and error_event is not None and not result.error:
            native.wire.streamed(self.creq, reader)
        if translating is not None and not result.error:
            try:
                await translating.end()
            except ConnectionResetError:
                pass
            if self.creq.dialect_state is not None:
                self.client.streamed(self.creq, translating)  # type: ignore[union-attr]
        self.ttft = result.first_write_at
        self.fingerprint = result.system_fingerprint
        self.usage = result.usage or result.estimated_usage(prompt_text(self.creq))
        if result.error:
            self.status, self.error = ("cancelled" if result.client_gone else "stream_error"), result.error
            self.http_status = 499 if result.client_gone else 200
        else:
            self.status, self.http_status, self.error = "ok", 200, ""
        self._settle()
        return None

    def _served_by(self, dep: RoutedDeployment) -> None:
        self.deployment = dep
        assert self.walk is not None
        self.headers["x-tollway-deployment"] = dep.name
        self.headers["x-tollway-attempts"] = str(self.walk.tries)

    def _usage_from_reply(self, dep: RoutedDeployment, body: bytes) -> Usage:
        assert self.creq is not None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        usage = None
        if type(parsed) is dict:
            usage = dep.dialect.usage_from_body(parsed)
            fingerprint = parsed.get("system_fingerprint")
            if fingerprint:
                self.fingerprint = fingerprint if type(fingerprint) is str else str(fingerprint)
        if usage is None:
            usage = estimated_usage(prompt_text(self.creq), answer_text_tally(parsed))
            self.headers["x-tollway-cost-estimated"] = "true"  # beside x-tollway-cost-usd: the figure is counted
        return usage

    def _settle(self) -> None:
        dep, usage = self.deployment, self.usage
        if dep is None or usage is None:
            return
        cost = try_cost_usd(usage, self.services.pricer.price_at(dep, self.arrived, usage.prompt_tokens))
        self.priced = cost is not None
        self.cost = cost if cost is not None else Decimal(0)

    def _total_cost(self) -> tuple[Decimal, bool]:
        """The answer's cost plus what routing spent on the way (hedge losers, a model classifier)."""
        extra, extra_priced = self.walk.extra_cost() if self.walk is not None else (Decimal(0), True)
        return self.cost + extra, self.priced and extra_priced

    def _failed(self, exc: GatewayError) -> None:
        self.http_status = exc.status
        self.error = exc.message
        upstream_refusal = exc.code in ("content_filter", "context_length_exceeded", "rate_limited")
        self.status = "client_error" if exc.status < 500 and not upstream_refusal else "error"

    def _features_json(self) -> str:
        """What serving this request needed, so `tollway replay` can judge another policy's plan."""
        if self.creq is None:
            return "{}"
        features = request_features(self.creq)
        return features_json(features.needs, features.max_tokens, self.plan_residency)

    def _row(self) -> LedgerRow:
        """The request's ledger row; `total` holds the exact cost its text was made from."""
        now = asyncio.get_running_loop().time()
        creq, dep, usage, walk = self.creq, self.deployment, self.usage or _NO_USAGE, self.walk
        if self.total is None:
            cost, priced = self._total_cost()
            cost = cost.normalize()
            cost_text = decimal_text(cost)
            self.total = (cost, cost_text, priced)
        else:
            _, cost_text, priced = self.total
        ttft = (self.ttft - self.started) * 1000 if self.ttft is not None else None
        if dep is not None:
            name, provider, upstream_model, jurisdiction = dep.name, dep.provider, dep.upstream_model, dep.jurisdiction
        else:
            name = provider = upstream_model = jurisdiction = ""
        return LedgerRow(  # positionally, in _ROW_ORDER
            self.request_id, iso_utc(self.arrived), self.endpoint, creq.model if creq else "", self.status,
            self.http_status, self.key.id if self.key else "", self.group, name, provider, upstream_model,
            jurisdiction, [a.to_ledger() for a in walk.attempts] if walk else [], usage.prompt_tokens,
            usage.cached_tokens, usage.cache_write_tokens, usage.completion_tokens, usage.reasoning_tokens,
            usage.source, cost_text, ttft, (now - self.started) * 1000, self.error,
            1 if creq is not None and creq.stream else 0, 0, 1 if priced else 0, self.fingerprint,
            self._features_json(), *self.attribution)

    def _bare_row(self) -> LedgerRow:
        """The row when building the full one failed: who, when, what the client got, nothing derived."""
        return LedgerRow(self.request_id, iso_utc(self.arrived), self.endpoint, "", self.status, self.http_status,
                         self.key.id if self.key else "", self.group, "", "", "", "", [], 0, 0, 0, 0, 0, "",
                         "0", None, 0.0, self.error, 0, 0, 0, "", "{}", *self.attribution)

"""A batch line run as a request of its own: the gateway's side of the Batch API (batch/).

The executor (batch/executor.py) hands over one line at a time; here it becomes a RequestLife on an
in-process exchange, so it is authenticated as the batch's key, routed (failover, breakers, residency),
held against and settled to the key's budgets, and recorded in exactly one ledger row, like a live
request. The differences are the batch's own: the row carries the batch id and the rate the line was
priced at, the line is priced at the batch clock's time (batch/clock.py), and a native line (answered
by a provider's batch API) is priced at the catalog's batch tier without any upstream call here.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import orjson

from tollway.accounting.tickets import ANONYMOUS, Key
from tollway.batch.jsonl import ENDPOINT_NAMES, line_request
from tollway.batch.rates import line_price, rate_of
from tollway.batch.registry import native_clients, serves_natively
from tollway.batch.types import LineOutcome, LineRun, NativeResult, Rate
from tollway.catalog.cost import try_cost_usd
from tollway.core.errors import GatewayError, model_not_found
from tollway.core.money import decimal_text
from tollway.gateway.exchange import LowerCaseHeaders, StreamSink
from tollway.gateway.handler import RequestLife

if TYPE_CHECKING:
    from aiohttp import ClientSession

    from tollway.batch.api import BatchApi
    from tollway.batch.executor import BatchExecutor
    from tollway.gateway.services import RequestServices
    from tollway.ledger.schema import LedgerRow


class LineExchange:
    """The Exchange of a line: its body in, one whole answer out; a line never streams."""

    __slots__ = ("headers", "body", "response")

    def __init__(self, request_id: str, body: bytes) -> None:
        self.headers = LowerCaseHeaders({"x-request-id": request_id, "content-type": "application/json"})
        self.body = body
        self.response: tuple[int, dict[str, str], bytes] | None = None

    async def read_body(self) -> bytes:
        return self.body

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.response = (status, headers, body)

    async def start_stream(self, headers: dict[str, str]) -> StreamSink:
        raise ConnectionResetError("a batch line does not stream")

    def client_gone(self) -> bool:
        return False


class _KeyAdmission:
    """Admission as a line sees it: the caller is the batch's key (no secret is presented); everything else
    (brownouts, the budget hold, settlement) is admission's own."""

    def __init__(self, admission, key: Key) -> None:
        self._admission, self._key = admission, key

    async def admit(self, request) -> tuple[Key, Mapping[str, str]]:
        return self._key, self._admission._brownouts.moves(self._key)  # the same moves a live request gets

    async def authenticate(self, request) -> Key:
        return self._key

    def __getattr__(self, name: str):
        return getattr(self._admission, name)


class BatchLineLife(RequestLife):
    """RequestLife for one line: priced at the batch clock's time and the line's rate; its row says so."""

    __slots__ = ("run", "rate")

    def __init__(self, services: "RequestServices", x: LineExchange, endpoint: str, run: LineRun) -> None:
        super().__init__(services, x, endpoint)
        self.run = run
        self.rate: Rate = run.rate
        self.request_id = run.request_id
        self.headers["x-request-id"] = run.request_id
        self.arrived = int(run.at.timestamp() * 1_000_000)

    def _settle(self) -> None:
        dep, usage = self.deployment, self.usage
        if dep is None or usage is None:
            return
        at = datetime.fromtimestamp(self.arrived / 1_000_000, timezone.utc)
        price = line_price(self.services.pricer, dep, at, usage.prompt_tokens,
                           "batch" if self.rate == "batch" else "standard")
        if self.rate != "batch":
            self.rate = rate_of(price)
        cost = try_cost_usd(usage, price)
        self.priced = cost is not None
        self.cost = cost if cost is not None else Decimal(0)

    async def unsent(self, error: GatewayError, status: str) -> None:
        """The row of a line that was never sent (cancelled, expired), with `status`; nothing is answered."""
        self.services.in_flight.count += 1  # _account counts it out
        self._failed(error)
        self.status = status
        await self._account()

    def _row(self) -> "LedgerRow":
        row = super()._row()
        row.batch_id, row.price_rate = self.run.batch_id, self.rate
        return row


class NativeLineLife(BatchLineLife):
    """A line a native batch upstream answered: admitted, priced at the batch tier, settled and recorded
    from the upstream's result; nothing is called."""

    __slots__ = ("result",)

    def __init__(self, services: "RequestServices", x: LineExchange, endpoint: str, run: LineRun,
                 result: NativeResult) -> None:
        super().__init__(services, x, endpoint, run)
        self.result = result

    async def _serve(self) -> tuple[int, dict[str, str], bytes] | None:
        services, result = self.services, self.result
        self.key, _ = await services.admission.admit(self.x)
        self.creq = creq = line_request(self.run.line)
        group = services.table.group_for(creq.model)
        dep = services.table.deployments.get(self.run.deployment)
        if group is None or dep is None:
            raise model_not_found(creq.model, services.table.public_names())
        self.group = group.name
        try:  # the provider has run it: the cost is real whatever the budget says now
            self.ticket = await services.admission.reserve(self.key, creq, group.name, [dep])
        except GatewayError:
            self.ticket = None
        self.deployment = dep
        self.headers["Content-Type"] = "application/json"
        if result.status_code != 200 or result.body is None:
            error = result.error or {"code": "upstream_error", "message": "the upstream batch failed this line"}
            raise GatewayError(result.status_code if result.status_code >= 400 else 502, str(error.get("message")),
                               "api_error", str(error.get("code") or "upstream_error"))
        self.usage = dep.dialect.usage_from_body(result.body) or self._usage_from_reply(dep, orjson.dumps(result.body))
        self._settle()
        cost = self.cost.normalize()
        self.total = (cost, decimal_text(cost), self.priced)
        self.status, self.http_status, self.error = "ok", 200, ""
        return 200, self.headers, orjson.dumps(result.body)


UNSENT = {  # the answer a line never sent stands for, for its row
    "cancelled": lambda message: GatewayError(499, message, "invalid_request_error", "batch_cancelled"),
    "expired": lambda message: GatewayError(504, message, "api_error", "batch_expired"),
    "failed": lambda message: GatewayError(502, message, "api_error", "upstream_batch_failed"),
}


class GatewayLines:
    """The LineService the executor uses: each call takes the gateway's services current at that moment
    (a config reload swaps them)."""

    def __init__(self, services: Callable[[], "RequestServices"]) -> None:
        self.services = services

    async def run(self, run: LineRun) -> LineOutcome:
        return await self._live(run, lambda services, x: BatchLineLife(services, x, ENDPOINT_NAMES[run.line.endpoint],
                                                                       run))

    async def record_native(self, run: LineRun, result: NativeResult) -> LineOutcome:
        return await self._live(run, lambda services, x: NativeLineLife(
            services, x, ENDPOINT_NAMES[run.line.endpoint], run, result))

    async def record_unsent(self, run: LineRun, state: str, message: str) -> None:
        services = self.services()
        life = BatchLineLife(services, LineExchange(run.request_id, b""), ENDPOINT_NAMES[run.line.endpoint], run)
        try:
            life.key = await self._key(services, run.key_id)
        except GatewayError:
            pass  # a revoked key: the row names no key
        try:
            life.creq = line_request(run.line)
        except GatewayError:
            pass
        group = services.table.group_for(run.line.model)
        life.group = group.name if group is not None else ""
        error = UNSENT[state](message)
        await life.unsent(error, "cancelled" if state == "cancelled" else "error")

    async def _live(self, run: LineRun, make: Callable[["RequestServices", LineExchange], BatchLineLife]) -> LineOutcome:
        services = self.services()
        x = LineExchange(run.request_id, orjson.dumps(run.line.body))
        try:
            keyed = await self._as_key(services, run.key_id)
        except GatewayError as exc:  # the key was revoked since the batch was made: refused, with its row
            life = make(services, x)
            await life.refuse(exc)
            return _outcome(life, x)
        life = make(keyed, x)
        await life.handle()
        return _outcome(life, x)

    async def _as_key(self, services: "RequestServices", key_id: str) -> "RequestServices":
        key = await self._key(services, key_id)
        return dataclasses.replace(services, admission=_KeyAdmission(services.admission, key))  # type: ignore[arg-type]

    @staticmethod
    async def _key(services: "RequestServices", key_id: str) -> Key:
        """The batch's key as admission would make it; GatewayError(401) once it is revoked."""
        cache = services.admission.cache
        if not key_id or cache is None:
            return ANONYMOUS
        record = await cache.get_or_refresh(key_id)
        if record is None or record.revoked:
            raise GatewayError(401, "The batch's key was revoked.", "authentication_error", "key_revoked")
        return Key(record.id, record.team, frozenset(record.models) if record.models else None,
                   frozenset(record.residency) if record.residency else None, record.name, record)


def _outcome(life: BatchLineLife, x: LineExchange) -> LineOutcome:
    status, _, body = x.response or (500, {}, b"")
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    cost = life.total[0] if life.total is not None else Decimal(0)
    error = None
    if status != 200:
        detail = parsed.get("error") if isinstance(parsed, dict) else None
        detail = detail if isinstance(detail, dict) else {}
        error = {"code": detail.get("code") or detail.get("type") or "error",
                 "message": detail.get("message") or life.error}
    return LineOutcome(status, parsed if isinstance(parsed, dict) else None, cost, life.rate, error)


class BatchService:
    """The Batch API's parts, built once by the gateway: the stores, the routes and the executor."""

    def __init__(self, gateway) -> None:
        from tollway.batch.api import BatchApi
        from tollway.batch.db import BatchDatabase
        from tollway.batch.executor import BatchExecutor
        from tollway.batch.files import FileStore
        from tollway.batch.store import BatchStore
        from tollway.config import default_ledger_path

        config = gateway.config
        settings = config.batch
        self.db = BatchDatabase(config.ledger.path or default_ledger_path(), config.database_url)
        files_dir = Path(settings.files_dir).expanduser() if settings.files_dir else None
        self.files = FileStore(self.db, files_dir)
        self.store = BatchStore(self.db)
        self.native_for: Callable = lambda dep: None
        self.api: BatchApi = BatchApi(self.store, self.files, settings, gateway.admission,
                                      lambda: gateway.services.table, lambda: gateway.services.pricer,
                                      serves_natively(lambda dep: self.native_for(dep)))
        self.executor: BatchExecutor = BatchExecutor(self.store, self.files, GatewayLines(lambda: gateway.services),
                                                     settings, gateway.admission, lambda: gateway.services.table,
                                                     lambda dep: self.native_for(dep))

    async def start(self, session: "ClientSession") -> None:
        self.native_for = native_clients(session)
        await self.executor.start()

    async def stop(self) -> None:
        await self.executor.stop()
        self.db.close()

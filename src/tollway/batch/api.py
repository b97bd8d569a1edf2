"""The Batch API's HTTP routes: OpenAI's /v1/files and /v1/batches, and Anthropic's /v1/messages/batches.

Each route answers through the gateway's `answer_locally` (handed in: this package sits below the
gateway), so every call is authenticated as a key and gets its own ledger row, and a client's files and
batches are visible to its key alone. Creating a batch checks everything first (the file's lines, the
models, the endpoint, the window, the budget) and creates nothing when any check fails: the client gets
a 400 (429 for a budget) naming the line or the field. Routes are registered as one stem each
(`/v1/files...`) so the hot-path server hands exactly these paths to aiohttp.
"""

from __future__ import annotations

import re
import secrets
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson
from aiohttp import web

from tollway.batch.budget_hold import BatchHolds, hold_ticket
from tollway.batch.clock import batch_now
from tollway.batch.files import FileStore
from tollway.batch.jsonl import check_models, line_error, line_hold_nano, parse_lines
from tollway.batch.output import anthropic_batch, anthropic_results, openai_batch
from tollway.batch.schedule import PlanLimits, plan_batch, window_seconds
from tollway.batch.settings import BatchSettings
from tollway.batch.store import BatchRecord, BatchStore
from tollway.batch.types import BATCH_ENDPOINTS, BatchLine
from tollway.core.errors import GatewayError, bad_request
from tollway.core.money import decimal_text, from_nano

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.accounting.tickets import Key
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.routing.table import RoutedDeployment, RouteTable

Answer = tuple[int, dict[str, str], bytes]
#: The gateway's way to answer a request from its own state: authenticate, answer, one ledger row.
AnswerLocally = Callable[[web.Request, str, Callable[["Key"], Awaitable[Answer]]], Awaitable[web.StreamResponse]]
_JSON = {"Content-Type": "application/json"}
MAX_METADATA = 16


def not_found(kind: str, ident: str, param: str) -> GatewayError:
    return GatewayError(404, f"No {kind} found with id '{ident}'.", "invalid_request_error", "not_found", param)


class BatchApi:
    def __init__(self, store: BatchStore, files: FileStore, settings: BatchSettings, admission: "Admission",
                 table: Callable[[], "RouteTable"], pricer: Callable[[], "DeploymentPricer"],
                 native: Callable[["RoutedDeployment", str], bool]) -> None:
        self.store, self.files, self.settings, self.admission = store, files, settings, admission
        self.table, self.pricer, self.native = table, pricer, native
        self.holds = BatchHolds(admission)

    def routes(self, answer_locally: AnswerLocally) -> list[web.RouteDef]:
        async def files(request: web.Request) -> web.StreamResponse:
            return await self._dispatch(request, answer_locally, "files", request.match_info["tail"])

        async def batches(request: web.Request) -> web.StreamResponse:
            return await self._dispatch(request, answer_locally, "batches", request.match_info["tail"])

        async def message_batches(request: web.Request) -> web.StreamResponse:
            return await self._dispatch(request, answer_locally, "messages.batches", request.match_info["tail"])

        return [web.route("*", "/v1/files{tail:(/.*)?}", files),
                web.route("*", "/v1/batches{tail:(/.*)?}", batches),
                web.route("*", "/v1/messages/batches{tail:(/.*)?}", message_batches)]

    async def _dispatch(self, request: web.Request, answer_locally: AnswerLocally, family: str,
                        tail: str) -> web.StreamResponse:
        parts = [p for p in tail.split("/") if p]
        method = request.method
        anthropic = family == "messages.batches"
        operation, handler = self._operation(family, method, parts, request)

        async def answer(key: "Key") -> Answer:
            try:
                if handler is None:
                    raise operation_missing(method, request.path)
                return await handler(key)
            except GatewayError as exc:
                if anthropic and not isinstance(exc, AnthropicShapedError):
                    raise AnthropicShapedError(exc) from None
                raise
        return await answer_locally(request, f"{family}.{operation}", answer)

    def _operation(self, family: str, method: str, parts: list[str], request: web.Request):
        """(operation name for the row's endpoint, the coroutine answering it) or (name, None)."""
        if family == "files":
            if method == "POST" and not parts:
                return "create", lambda key: self.create_file(request, key)
            if method == "GET" and len(parts) == 1:
                return "retrieve", lambda key: self.get_file(parts[0], key)
            if method == "GET" and len(parts) == 2 and parts[1] == "content":
                return "content", lambda key: self.file_content(parts[0], key)
        elif family == "batches":
            if method == "POST" and not parts:
                return "create", lambda key: self.create_openai(request, key)
            if method == "GET" and not parts:
                return "list", lambda key: self.list_batches(request, key, "openai")
            if method == "GET" and len(parts) == 1:
                return "retrieve", lambda key: self.get_batch(parts[0], key, "openai", request)
            if method == "POST" and len(parts) == 2 and parts[1] == "cancel":
                return "cancel", lambda key: self.cancel(parts[0], key, "openai", request)
        else:
            if method == "POST" and not parts:
                return "create", lambda key: self.create_anthropic(request, key)
            if method == "GET" and not parts:
                return "list", lambda key: self.list_batches(request, key, "anthropic")
            if method == "GET" and len(parts) == 1:
                return "retrieve", lambda key: self.get_batch(parts[0], key, "anthropic", request)
            if method == "GET" and len(parts) == 2 and parts[1] == "results":
                return "results", lambda key: self.anthropic_results(parts[0], key)
            if method == "POST" and len(parts) == 2 and parts[1] == "cancel":
                return "cancel", lambda key: self.cancel(parts[0], key, "anthropic", request)
        return "unknown", None

    # -- files ----------------------------------------------------------------------------------------

    async def create_file(self, request: web.Request, key: "Key") -> Answer:
        if not request.content_type.startswith("multipart/"):
            raise bad_request("Upload the file as multipart/form-data with fields 'file' and 'purpose'.", "file")
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise bad_request(f"The file is larger than this gateway takes ({self.settings.max_file_bytes} "
                              "bytes, batch.max_file_bytes).", "file", "file_too_large") from None
        purpose = form.get("purpose")
        if purpose != "batch":
            raise bad_request(f"purpose {purpose!r} is not supported; tollway stores files with purpose 'batch'.",
                              "purpose", "unsupported_purpose")
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise bad_request("'file' is required: the JSONL input file as a multipart file field.", "file")
        content = upload.file.read()
        parse_lines(content, self.settings.max_file_bytes, self.settings.max_lines)  # refuse a bad file now
        stored = await self.files.put(key.id, "batch", upload.filename or "input.jsonl", content)
        return 200, dict(_JSON), orjson.dumps(stored.as_openai())

    async def get_file(self, file_id: str, key: "Key") -> Answer:
        stored = await self.files.get(file_id, key.id)
        return 200, dict(_JSON), orjson.dumps(stored.as_openai())

    async def file_content(self, file_id: str, key: "Key") -> Answer:
        content = await self.files.content(file_id, key.id)
        return 200, {"Content-Type": "application/jsonl"}, content

    # -- batches --------------------------------------------------------------------------------------

    async def create_openai(self, request: web.Request, key: "Key") -> Answer:
        body = await _json_body(request)
        file_id, endpoint, window = body.get("input_file_id"), body.get("endpoint"), body.get("completion_window")
        if not isinstance(file_id, str) or not file_id:
            raise bad_request("'input_file_id' is required: the id of an uploaded file with purpose 'batch'.",
                              "input_file_id")
        if endpoint not in BATCH_ENDPOINTS:
            raise bad_request(f"endpoint {endpoint!r} is not one tollway batches; use one of "
                              f"{', '.join(BATCH_ENDPOINTS)}.", "endpoint", "unsupported_endpoint")
        metadata = _metadata(body.get("metadata"))
        stored = await self.files.get(file_id, key.id)
        if stored.purpose != "batch":
            raise bad_request(f"file {file_id} has purpose {stored.purpose!r}, not 'batch'.", "input_file_id")
        content = await self.files.content(file_id, key.id)
        lines = parse_lines(content, self.settings.max_file_bytes, self.settings.max_lines)
        for line in lines:
            if line.endpoint != endpoint:
                raise line_error(line.index + 1, "url", f"url {line.endpoint!r} is not the batch's endpoint "
                                 f"{endpoint!r}.", "mixed_endpoints")
        record = await self._create(key, lines, "openai", endpoint, file_id, window, metadata)
        return 200, dict(_JSON), orjson.dumps(openai_batch(record))

    async def create_anthropic(self, request: web.Request, key: "Key") -> Answer:
        body = await _json_body(request)
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("'requests' must be a non-empty array of {custom_id, params}.", "requests")
        rows = []
        for number, item in enumerate(requests):
            if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
                raise bad_request(f"requests[{number}] must be an object with 'custom_id' and 'params'.",
                                  f"requests[{number}]")
            rows.append(orjson.dumps({"custom_id": item.get("custom_id"), "method": "POST", "url": "/v1/messages",
                                      "body": item["params"]}))
        content = b"\n".join(rows) + b"\n"
        try:
            lines = parse_lines(content, self.settings.max_file_bytes, self.settings.max_lines)
        except GatewayError as exc:
            raise as_requests_error(exc) from None
        stored = await self.files.put(key.id, "batch", "message_batch.jsonl", content)
        try:
            record = await self._create(key, lines, "anthropic", "/v1/messages", stored.id, "24h", {})
        except GatewayError as exc:
            await self.files.db.run(lambda db: db.write("DELETE FROM batch_files WHERE id = ?", (stored.id,)))
            raise as_requests_error(exc) from None
        return 200, dict(_JSON), orjson.dumps(anthropic_batch(record, _base(request)))

    async def _create(self, key: "Key", lines: list[BatchLine], shape: str, endpoint: str, file_id: str,
                      window: Any, metadata: dict) -> BatchRecord:
        table, pricer = self.table(), self.pricer()
        if not isinstance(window, str) or window_seconds(window) is None:
            raise bad_request(f"completion_window {window!r} is not a whole number of hours such as \"24h\".",
                              "completion_window", "invalid_completion_window")
        check_models(lines, table)
        holds = {line.index: line_hold_nano(self.admission, table, line) for line in lines}
        limits = PlanLimits(self.settings.concurrency, self.settings.line_estimate_s,
                            self.settings.expected_output_tokens, self.settings.max_window_h)
        now = batch_now()
        plan = plan_batch(lines, table, pricer, now, window, native=self.native, limits=limits,
                          worst_case=lambda line: from_nano(holds[line.index]))
        if not plan.feasible:
            raise bad_request(f"The schedule cannot meet this batch's window: {plan.reason}.", "completion_window",
                              "window_cannot_be_met")
        prefix = "msgbatch_" if shape == "anthropic" else "batch_"
        batch_id = f"{prefix}{time.time_ns():016x}{secrets.token_hex(6)}"  # sorts in creation order (listing)
        created = int(now.timestamp())
        worst_nano = sum(holds.values())
        record = BatchRecord(batch_id, key.id, shape, endpoint, file_id, window, "validating", created,
                             int(plan.deadline.timestamp()), metadata=metadata, total=len(lines),
                             worst_case_usd=decimal_text(Decimal(worst_nano).scaleb(-9)),
                             expected_cost_usd=decimal_text(plan.expected_cost_usd))
        hold_ms = int((plan.deadline - now).total_seconds() * 1000) + 3_600_000
        ticket = hold_ticket(batch_id, 0)
        await self.holds.hold(key.record, ticket, worst_nano, hold_ms, refuse=True)
        try:
            await self.store.db.run(lambda db: self.store.create_sync(db, record, lines, plan.lines))
        except BaseException:
            await self.holds.release(key.record, ticket)
            raise
        return await self._owned(batch_id, key, shape)

    async def _owned(self, batch_id: str, key: "Key", shape: str) -> BatchRecord:
        record = await self.store.get(batch_id)
        if record is None or record.key_id != key.id or record.shape != shape:
            raise not_found("batch", batch_id, "batch_id")
        return record

    async def get_batch(self, batch_id: str, key: "Key", shape: str, request: web.Request) -> Answer:
        record = await self._owned(batch_id, key, shape)
        shaped = openai_batch(record) if shape == "openai" else anthropic_batch(record, _base(request))
        return 200, dict(_JSON), orjson.dumps(shaped)

    async def list_batches(self, request: web.Request, key: "Key", shape: str) -> Answer:
        query = request.query
        after = query.get("after") or query.get("after_id")
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise bad_request("'limit' must be a whole number from 1 to 100.", "limit") from None
        if not 1 <= limit <= 100:
            raise bad_request("'limit' must be a whole number from 1 to 100.", "limit")
        records = await self.store.list_for_key(key.id, after, limit + 1, shape)
        more, records = len(records) > limit, records[:limit]
        if shape == "openai":
            data = [openai_batch(r) for r in records]
            page = {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None, "has_more": more}
        else:
            data = [anthropic_batch(r, _base(request)) for r in records]
            page = {"data": data, "has_more": more, "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None}
        return 200, dict(_JSON), orjson.dumps(page)

    async def cancel(self, batch_id: str, key: "Key", shape: str, request: web.Request) -> Answer:
        await self._owned(batch_id, key, shape)
        await self.store.request_cancel(batch_id)
        return await self.get_batch(batch_id, key, shape, request)

    async def anthropic_results(self, batch_id: str, key: "Key") -> Answer:
        record = await self._owned(batch_id, key, "anthropic")
        if record.status not in ("completed", "cancelled", "expired", "failed"):
            raise GatewayError(400, f"Batch {batch_id} is still processing; its results are ready when "
                               "processing_status is 'ended'.", "invalid_request_error", "batch_not_ended")
        return 200, {"Content-Type": "application/binary"}, anthropic_results(await self.store.lines(batch_id))


def as_requests_error(exc: GatewayError) -> GatewayError:
    """A line's error, named as the Message Batches request it came from: `requests[0].params.model`."""
    match = re.match(r"line\[(\d+)\](.*)", exc.param or "")
    if match is None:
        return exc
    index, rest = int(match.group(1)) - 1, match.group(2).replace(".body", ".params", 1)
    message = re.sub(r"^Line \d+ of the input file", f"requests[{index}]", exc.message)
    return GatewayError(exc.status, message, exc.type, exc.code, f"requests[{index}]{rest}", exc.headers)


def operation_missing(method: str, path: str) -> GatewayError:
    return GatewayError(404, f"{method} {path} is not a route of the Batch API.", "invalid_request_error",
                        "unknown_url")


class AnthropicShapedError(GatewayError):
    """The same error, in Anthropic's shape `{"type": "error", "error": {"type", "message"}}` for the
    Message Batches routes (the row and the status are the same as OpenAI's)."""

    KINDS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error"}

    def __init__(self, exc: GatewayError) -> None:
        super().__init__(exc.status, exc.message, exc.type, exc.code, exc.param, exc.headers)

    def body(self) -> bytes:
        kind = self.KINDS.get(self.status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": self.message}})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.", code="invalid_json")
    return body


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METADATA or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()):
        raise bad_request(f"'metadata' must be an object of at most {MAX_METADATA} string keys (64 characters) "
                          "and string values (512 characters).", "metadata")
    return value


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"

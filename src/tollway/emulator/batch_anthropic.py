"""Anthropic's Message Batches API: requests inline, results as JSONL at the batch's results_url.

Shapes as the API reference and the anthropic SDK's types give them
(https://docs.anthropic.com/en/api/creating-message-batches): processing_status in_progress -> canceling
-> ended; request_counts stay all "processing" until the whole batch ends; each result line is
{"custom_id", "result": {"type": succeeded|errored|canceled|expired, ...}}; a custom_id matches
^[a-zA-Z0-9_-]{1,64}$; a batch holds at most 100,000 requests and expires 24 hours after creation.
A request's params are checked when it runs, so a bad one ends as an errored result, not a refused batch.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.batch_lines import LineRunner
from tollway.emulator.batch_store import BATCHES, BatchStore, EmulatedBatch, Line
from tollway.emulator.control import STATE

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
EXPIRES_S = 24 * 3600
PROCESSING = {"validating": "in_progress", "in_progress": "in_progress", "cancelling": "canceling"}
RESULT_TYPES = {"ok": "succeeded", "error": "errored", "cancelled": "canceled", "expired": "expired"}


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{uuid.uuid4().hex[:24]}"}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _runner(request: web.Request) -> Any:
    return request.app[BATCHES].counted(LineRunner(request.app[STATE], "anthropic", "/anthropic"))


def _rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def create(request: web.Request) -> web.Response:
    """POST /v1/messages/batches {"requests": [{"custom_id", "params"}]}."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "The request body is not valid JSON.")
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return _error(400, "requests: Field required (a non-empty array)")
    if len(requests) > MAX_REQUESTS:
        return _error(400, f"requests: at most {MAX_REQUESTS} requests per batch, got {len(requests)}")
    lines, seen = [], set()
    for index, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            return _error(400, f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if custom_id in seen:
            return _error(400, f"requests.{index}.custom_id: duplicate custom_id {custom_id!r}; each must be unique")
        if not isinstance(item.get("params"), dict):
            return _error(400, f"requests.{index}.params: Field required")
        seen.add(custom_id)
        lines.append(Line(custom_id, "/v1/messages", item["params"]))
    store = request.app[BATCHES]
    try:
        settings = store.settings.overridden(request.headers)
    except ValueError as exc:
        return _error(400, f"bad emulator batch header: {exc}")
    batch = store.add_batch(EmulatedBatch(f"msgbatch_{uuid.uuid4().hex[:24]}", "anthropic", settings, lines,
                                          time.time()))
    return _json(render(request, batch))


def _found(request: web.Request) -> EmulatedBatch | web.Response:
    batch_id = request.match_info["batch_id"]
    batch = request.app[BATCHES].batch("anthropic", batch_id)
    if batch is None:
        return _error(404, f"No message batch found with id '{batch_id}'.", "not_found_error")
    batch.advance(time.time(), _runner(request))
    return batch


async def retrieve(request: web.Request) -> web.Response:
    """GET /v1/messages/batches/{batch_id}."""
    found = _found(request)
    return found if isinstance(found, web.Response) else _json(render(request, found))


async def cancel(request: web.Request) -> web.Response:
    """POST /v1/messages/batches/{batch_id}/cancel: canceling now, ended at the next look."""
    found = _found(request)
    if isinstance(found, web.Response):
        return found
    found.cancel(time.time(), _runner(request))
    return _json(render(request, found))


async def results(request: web.Request) -> web.Response:
    """GET /v1/messages/batches/{batch_id}/results: one JSON line per request, once the batch has ended."""
    found = _found(request)
    if isinstance(found, web.Response):
        return found
    if not found.ended:
        return _error(400, f"Message batch '{found.id}' has not ended yet; its results are not available.")
    rows = []
    for index, line in enumerate(found.lines):
        result = found.results[index]
        kind = RESULT_TYPES[result.end]
        outcome: dict[str, Any] = {"type": kind}
        if kind == "succeeded":
            outcome["message"] = result.body
        elif kind == "errored":
            outcome["error"] = result.body
        rows.append(orjson.dumps({"custom_id": line.custom_id, "result": outcome}))
    return web.Response(body=b"\n".join(rows) + b"\n", content_type="application/x-jsonl")


async def delete(request: web.Request) -> web.Response:
    """DELETE /v1/messages/batches/{batch_id}: only an ended batch may be deleted."""
    found = _found(request)
    if isinstance(found, web.Response):
        return found
    if not found.ended:
        return _error(400, f"Message batch '{found.id}' is still processing; cancel it before deleting it.")
    request.app[BATCHES].batches.pop(found.id, None)
    return _json({"id": found.id, "type": "message_batch_deleted"})


async def list_batches(request: web.Request) -> web.Response:
    """GET /v1/messages/batches: newest first."""
    store: BatchStore = request.app[BATCHES]
    runner = _runner(request)
    batches = [b for b in reversed(store.batches.values()) if b.dialect == "anthropic"]
    for batch in batches:
        batch.advance(time.time(), runner)
    data = [render(request, b) for b in batches]
    return _json({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                  "last_id": data[-1]["id"] if data else None})


def render(request: web.Request, batch: EmulatedBatch) -> dict[str, Any]:
    counts = batch.counts()
    ended = batch.ended
    prefix = "/anthropic" if request.path.startswith("/anthropic/") else ""
    return {
        "id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else PROCESSING[batch.phase],
        "request_counts": {"processing": 0 if ended else len(batch.lines), "succeeded": counts["ok"],
                           "errored": counts["error"], "canceled": counts["cancelled"], "expired": counts["expired"]}
        if ended else {"processing": len(batch.lines), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "ended_at": _rfc3339(batch.at.get(batch.phase)) if ended else None,
        "created_at": _rfc3339(batch.created),
        "expires_at": _rfc3339(batch.created + (batch.settings.expire_after_s or EXPIRES_S)),
        "cancel_initiated_at": _rfc3339(batch.at.get("cancelling")), "archived_at": None,
        "results_url": f"{request.scheme}://{request.host}{prefix}/v1/messages/batches/{batch.id}/results"
        if ended else None,
    }


def add_message_batch_routes(app: web.Application) -> None:
    for prefix in ("", "/anthropic"):
        app.router.add_post(f"{prefix}/v1/messages/batches", create)
        app.router.add_get(f"{prefix}/v1/messages/batches", list_batches)
        app.router.add_get(f"{prefix}/v1/messages/batches/{{batch_id}}", retrieve)
        app.router.add_delete(f"{prefix}/v1/messages/batches/{{batch_id}}", delete)
        app.router.add_post(f"{prefix}/v1/messages/batches/{{batch_id}}/cancel", cancel)
        app.router.add_get(f"{prefix}/v1/messages/batches/{{batch_id}}/results", results)

"""OpenAI's Batch API, and DashScope's OpenAI-compatible one under its path prefix.

Shapes as the providers document them: the batch object (status validating -> in_progress -> finalizing
-> completed, or failed / expired / cancelling -> cancelled), `request_counts`, and output and error
files whose lines are {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}
(https://platform.openai.com/docs/api-reference/batch). OpenAI takes completion_window "24h" only;
DashScope "24h" up to "336h" (https://docs.qwencloud.com/developer-guides/text-generation/batch). Lines
that never ran (the batch was cancelled or expired) go to the error file with error code batch_cancelled
or batch_expired. OpenAI reports a batch's summed `usage`; DashScope's object does not carry one.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.batch_files import FILES_DIALECTS, files_dialect, openai_error
from tollway.emulator.batch_input import InputLimits, InvalidInput, parse_input
from tollway.emulator.batch_lines import LineRunner
from tollway.emulator.batch_store import BATCHES, BatchStore, EmulatedBatch, LineResult
from tollway.emulator.control import STATE

NOT_RUN_MESSAGES = {"cancelled": ("batch_cancelled", "This line was not executed because the batch was cancelled."),
                    "expired": ("batch_expired", "This line could not be executed before the completion window "
                                "expired.")}


@dataclass(frozen=True)
class BatchDialect:
    """One provider's Batch API facts."""

    name: str
    endpoints: frozenset[str]
    limits: InputLimits
    min_window_h: int
    max_window_h: int
    reports_usage: bool


BATCH_DIALECTS = {
    # limits: the openai SDK's BatchCreateParams docs (50,000 requests, 200 MB); the emulator answers chat,
    # completions and embeddings lines
    "openai": BatchDialect("openai", frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}),
                           InputLimits(50_000, 200 * 1024 * 1024), 24, 24, True),
    # 50,000 requests, 500 MB, 6 MB a line; window 24h-336h (docs.qwencloud.com batch page)
    "qwen": BatchDialect("qwen", frozenset({"/v1/chat/completions", "/v1/embeddings"}),
                         InputLimits(50_000, 500 * 1024 * 1024, 6 * 1024 * 1024), 24, 336, False),
}
WINDOW = re.compile(r"^(\d+)h$")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _runner(request: web.Request, dialect: str) -> Any:
    prefix = "" if "dialect" not in request.match_info else f"/{dialect}"
    return request.app[BATCHES].counted(LineRunner(request.app[STATE], dialect, prefix))


async def create(request: web.Request) -> web.Response:
    """POST /v1/batches {input_file_id, endpoint, completion_window, metadata}."""
    files = files_dialect(request)
    if isinstance(files, web.Response):
        return files
    dialect, store = BATCH_DIALECTS[files.name], request.app[BATCHES]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return openai_error(dialect.name, 400, "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return openai_error(dialect.name, 400, "The request body must be a JSON object.")
    refused = _refusal(dialect, store, body)
    if refused is not None:
        return refused
    try:
        settings = store.settings.overridden(request.headers)
    except ValueError as exc:
        return openai_error(dialect.name, 400, f"bad emulator batch header: {exc}")
    stored = store.file(dialect.name, body["input_file_id"])
    assert stored is not None  # _refusal checked it
    batch = EmulatedBatch(f"batch_{uuid.uuid4()}" if dialect.name == "qwen" else f"batch_{uuid.uuid4().hex[:24]}",
                          dialect.name, settings, [], time.time(),
                          attributes={k: body.get(k) for k in ("input_file_id", "endpoint", "completion_window")})
    batch.attributes["metadata"] = body.get("metadata")
    try:
        batch.lines, batch.attributes["model"] = parse_input(stored.content, body["endpoint"], dialect.limits)
    except InvalidInput as exc:
        batch.validation_error = exc.error
    store.add_batch(batch)
    return _json(render(store, batch))


def _refusal(dialect: BatchDialect, store: BatchStore, body: dict) -> web.Response | None:
    """The 400 a create request gets for a bad field (the file's own lines are checked while validating)."""
    file_id, endpoint, window = body.get("input_file_id"), body.get("endpoint"), body.get("completion_window")
    for name, value in (("input_file_id", file_id), ("endpoint", endpoint), ("completion_window", window)):
        if not isinstance(value, str) or not value:
            return openai_error(dialect.name, 400, f"Missing required parameter: '{name}'.", name,
                                "missing_required_parameter")
    assert isinstance(file_id, str) and isinstance(window, str)  # each checked just above
    stored = store.file(dialect.name, file_id)
    if stored is None or stored.purpose != "batch":
        return openai_error(dialect.name, 400, f"Invalid 'input_file_id': {file_id!r} is not an uploaded file "
                            "with purpose 'batch'.", "input_file_id", "invalid_value")
    if endpoint not in dialect.endpoints:
        return openai_error(dialect.name, 400, f"Invalid value for 'endpoint': {endpoint!r}; use one of "
                            f"{', '.join(sorted(dialect.endpoints))}.", "endpoint", "invalid_value")
    match = WINDOW.match(window)
    if match is None or not dialect.min_window_h <= int(match.group(1)) <= dialect.max_window_h:
        allowed = "'24h'" if dialect.max_window_h == 24 else f"'{dialect.min_window_h}h' to '{dialect.max_window_h}h'"
        return openai_error(dialect.name, 400, f"Invalid value for 'completion_window': {window!r}; use {allowed}.",
                            "completion_window", "invalid_value")
    metadata = body.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and len(metadata) <= 16 and
                                     all(isinstance(v, str) for v in metadata.values())):
        return openai_error(dialect.name, 400, "Invalid 'metadata': at most 16 string values.", "metadata",
                            "invalid_value")
    return None


def _found(request: web.Request) -> tuple[BatchStore, EmulatedBatch] | web.Response:
    files = files_dialect(request)
    if isinstance(files, web.Response):
        return files
    store, batch_id = request.app[BATCHES], request.match_info["batch_id"]
    batch = store.batch(files.name, batch_id)
    if batch is None:
        return openai_error(files.name, 404, f"No batch found with id '{batch_id}'.", "batch_id", "not_found")
    batch.advance(time.time(), _runner(request, files.name))
    return store, batch


async def retrieve(request: web.Request) -> web.Response:
    """GET /v1/batches/{batch_id}."""
    found = _found(request)
    return found if isinstance(found, web.Response) else _json(render(*found))


async def cancel(request: web.Request) -> web.Response:
    """POST /v1/batches/{batch_id}/cancel: cancelling now, cancelled at the next look; finished lines stay."""
    found = _found(request)
    if isinstance(found, web.Response):
        return found
    store, batch = found
    if batch.ended:
        return openai_error(batch.dialect, 409, f"Cannot cancel a batch with status '{batch.phase}'.", None,
                            "batch_not_cancellable")
    batch.cancel(time.time(), _runner(request, batch.dialect))
    return _json(render(store, batch))


async def list_batches(request: web.Request) -> web.Response:
    """GET /v1/batches?limit=&after=: newest first."""
    files = files_dialect(request)
    if isinstance(files, web.Response):
        return files
    store = request.app[BATCHES]
    limit_text = request.query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        return openai_error(files.name, 400, f"Invalid 'limit': {limit_text!r}; use 1 to 100.", "limit")
    batches = [b for b in reversed(store.batches.values()) if b.dialect == files.name]
    after = request.query.get("after")
    if after is not None:
        ids = [b.id for b in batches]
        batches = batches[ids.index(after) + 1:] if after in ids else []
    runner = _runner(request, files.name)
    page = batches[:int(limit_text)]
    for batch in page:
        batch.advance(time.time(), runner)
    data = [render(store, b) for b in page]
    return _json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                  "last_id": data[-1]["id"] if data else None, "has_more": len(batches) > len(page)})


def render(store: BatchStore, batch: EmulatedBatch) -> dict[str, Any]:
    """The batch object; its output and error files are written once, when it ends."""
    if batch.ended and "files_written" not in batch.attributes:
        _write_files(store, batch)
    counts = batch.counts()
    stamp = {phase: int(when) for phase, when in batch.at.items()}
    finished = batch.phase == "completed"
    validated = batch.phase != "validating" and batch.validation_error is None
    body: dict[str, Any] = {
        "id": batch.id, "object": "batch", "endpoint": batch.attributes["endpoint"],
        "errors": {"object": "list", "data": [batch.validation_error]} if batch.validation_error
        and batch.phase == "failed" else None,
        "input_file_id": batch.attributes["input_file_id"], "completion_window": batch.attributes["completion_window"],
        "status": batch.phase, "output_file_id": batch.attributes.get("output_file_id"),
        "error_file_id": batch.attributes.get("error_file_id"), "created_at": int(batch.created),
        "in_progress_at": stamp.get("in_progress"), "expires_at": int(batch.created) + _window_s(batch),
        "finalizing_at": stamp.get("completed") if finished else None, "completed_at": stamp.get("completed"),
        "failed_at": stamp.get("failed"), "expired_at": stamp.get("expired"),
        "cancelling_at": stamp.get("cancelling"), "cancelled_at": stamp.get("cancelled"),
        "request_counts": {"total": len(batch.lines) if validated else 0, "completed": counts["ok"],
                           "failed": counts["error"] + counts["expired"] + counts["cancelled"]},
        "metadata": batch.attributes.get("metadata"),
    }
    if BATCH_DIALECTS[batch.dialect].reports_usage:
        body["model"] = batch.attributes.get("model")
        body["usage"] = _usage(batch.results.values())
    return body


def _window_s(batch: EmulatedBatch) -> int:
    match = WINDOW.match(batch.attributes["completion_window"] or "")
    return int(match.group(1)) * 3600 if match else 24 * 3600


def _usage(results: Any) -> dict[str, Any]:
    """OpenAI's batch usage: the successful lines' tokens summed (chat and completions usage names)."""
    prompt = completion = cached = reasoning = 0
    for result in results:
        usage = (result.body or {}).get("usage") if result.end == "ok" else None
        if not isinstance(usage, dict):
            continue
        prompt += usage.get("prompt_tokens") or 0
        completion += usage.get("completion_tokens") or 0
        cached += (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        reasoning += (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": prompt + completion}


def _write_files(store: BatchStore, batch: EmulatedBatch) -> None:
    batch.attributes["files_written"] = True
    output: list[bytes] = []
    failed: list[bytes] = []
    for index, line in enumerate(batch.lines):
        result = batch.results.get(index)
        if result is None:
            continue
        (output if result.end == "ok" else failed).append(orjson.dumps(_output_line(line.custom_id, result)))
    prefix = FILES_DIALECTS[batch.dialect].file_prefix
    for key, rows, suffix in (("output_file_id", output, "output"), ("error_file_id", failed, "error")):
        if rows:
            stored = store.add_file(batch.dialect, f"{batch.id}_{suffix}.jsonl", "batch_output",
                                    b"\n".join(rows) + b"\n", prefix)
            batch.attributes[key] = stored.id


def _output_line(custom_id: str, result: LineResult) -> dict[str, Any]:
    line_id = f"batch_req_{uuid.uuid4().hex[:24]}"
    if result.end in NOT_RUN_MESSAGES:
        code, message = NOT_RUN_MESSAGES[result.end]
        return {"id": line_id, "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
    response = {"status_code": result.status, "request_id": f"req_{uuid.uuid4().hex[:24]}", "body": result.body}
    return {"id": line_id, "custom_id": custom_id, "response": response, "error": None}


def add_batch_routes(app: web.Application) -> None:
    for prefix in ("", "/{dialect}"):
        app.router.add_post(f"{prefix}/v1/batches", create)
        app.router.add_get(f"{prefix}/v1/batches", list_batches)
        app.router.add_get(f"{prefix}/v1/batches/{{batch_id}}", retrieve)
        app.router.add_post(f"{prefix}/v1/batches/{{batch_id}}/cancel", cancel)


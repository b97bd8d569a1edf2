"""The Files API of the providers whose batches read an uploaded JSONL file: OpenAI and DashScope.

Both take a multipart upload with `purpose=batch` and serve the same file object; DashScope's ids start
`file-batch-` and its upload answers status "uploaded"
(https://docs.qwencloud.com/developer-guides/text-generation/batch). A file uploaded to one provider does
not exist at the other, as with real accounts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.batch_store import BATCHES, StoredFile


@dataclass(frozen=True)
class FilesDialect:
    """One provider's Files API habits."""

    name: str
    file_prefix: str
    upload_status: str
    purposes: frozenset[str]


FILES_DIALECTS = {
    # https://platform.openai.com/docs/api-reference/files (purposes as the openai SDK's FileObject lists them)
    "openai": FilesDialect("openai", "file-", "processed",
                           frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})),
    # https://www.alibabacloud.com/help/en/model-studio/batch-interfaces-compatible-with-openai
    "qwen": FilesDialect("qwen", "file-batch-", "uploaded", frozenset({"batch", "file-extract"})),
}


def openai_error(dialect: str, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> web.Response:
    """The OpenAI error envelope (DashScope adds its request_id)."""
    body: dict[str, Any] = {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                      "code": code}}
    if dialect == "qwen":
        body["request_id"] = str(uuid.uuid4())
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def files_dialect(request: web.Request) -> FilesDialect | web.Response:
    """The dialect the path names, or the 404 a provider without a Files API would answer."""
    name = request.match_info.get("dialect", "openai")
    found = FILES_DIALECTS.get(name)
    if found is None:
        return openai_error("openai", 404, f"the emulator serves the Files and Batch APIs for "
                            f"{', '.join(FILES_DIALECTS)} only, not {name!r}", code="not_found")
    return found


def file_object(stored: StoredFile) -> dict[str, Any]:
    status = FILES_DIALECTS[stored.dialect].upload_status if stored.purpose == "batch" else "processed"
    return {"id": stored.id, "object": "file", "bytes": len(stored.content), "created_at": stored.created_at,
            "filename": stored.filename, "purpose": stored.purpose, "status": status, "status_details": None,
            "expires_at": None}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def upload(request: web.Request) -> web.Response:
    """POST /v1/files (multipart: file, purpose)."""
    dialect = files_dialect(request)
    if isinstance(dialect, web.Response):
        return dialect
    if not request.content_type.startswith("multipart/"):
        return openai_error(dialect.name, 400, "the upload must be multipart/form-data with 'file' and 'purpose'")
    form = await request.post()
    purpose, sent = form.get("purpose"), form.get("file")
    if not isinstance(purpose, str) or not purpose:
        return openai_error(dialect.name, 400, "Missing required parameter: 'purpose'.", "purpose",
                            "missing_required_parameter")
    if purpose not in dialect.purposes:
        return openai_error(dialect.name, 400, f"Invalid value for 'purpose': {purpose!r}; use one of "
                            f"{', '.join(sorted(dialect.purposes))}.", "purpose", "invalid_value")
    if not isinstance(sent, web.FileField):
        return openai_error(dialect.name, 400, "Missing required parameter: 'file'.", "file",
                            "missing_required_parameter")
    content = sent.file.read()
    stored = request.app[BATCHES].add_file(dialect.name, sent.filename or "upload.jsonl", purpose, content,
                                           dialect.file_prefix)
    return _json(file_object(stored))


def _stored(request: web.Request) -> StoredFile | web.Response:
    dialect = files_dialect(request)
    if isinstance(dialect, web.Response):
        return dialect
    file_id = request.match_info["file_id"]
    stored = request.app[BATCHES].file(dialect.name, file_id)
    if stored is None:
        return openai_error(dialect.name, 404, f"No such File object: {file_id}", "id", "not_found")
    return stored


async def retrieve(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}."""
    stored = _stored(request)
    return stored if isinstance(stored, web.Response) else _json(file_object(stored))


async def content(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}/content: the bytes as uploaded or written."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    return web.Response(body=stored.content, content_type="application/octet-stream")


async def delete(request: web.Request) -> web.Response:
    """DELETE /v1/files/{file_id}."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    request.app[BATCHES].files.pop(stored.id, None)
    return _json({"id": stored.id, "object": "file", "deleted": True})


async def list_files(request: web.Request) -> web.Response:
    """GET /v1/files: newest first, optionally of one purpose."""
    dialect = files_dialect(request)
    if isinstance(dialect, web.Response):
        return dialect
    purpose = request.query.get("purpose")
    found = [f for f in request.app[BATCHES].files.values()
             if f.dialect == dialect.name and (purpose is None or f.purpose == purpose)]
    data = [file_object(f) for f in reversed(found)]
    return _json({"object": "list", "data": data, "has_more": False,
                  "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})


def add_file_routes(app: web.Application) -> None:
    for prefix in ("", "/{dialect}"):
        app.router.add_post(f"{prefix}/v1/files", upload)
        app.router.add_get(f"{prefix}/v1/files", list_files)
        app.router.add_get(f"{prefix}/v1/files/{{file_id}}", retrieve)
        app.router.add_delete(f"{prefix}/v1/files/{{file_id}}", delete)
        app.router.add_get(f"{prefix}/v1/files/{{file_id}}/content", content)

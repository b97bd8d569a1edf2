"""The batch APIs' place in the emulator: their routes, and /_emulator/batches for tests to steer and count.

GET answers the default settings, each batch's phase, and how many times each custom_id was run (the
"each line runs once" checks of a gateway restart); PUT replaces the settings (how long batches validate
and run, which lines fail, when they expire); DELETE forgets files, batches and counts. The emulator's
reset does the same, and with {"profiles": true} also restores the default settings.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from pydantic import ValidationError

from tollway.emulator.batch_anthropic import add_message_batch_routes
from tollway.emulator.batch_files import add_file_routes
from tollway.emulator.batch_openai import add_batch_routes
from tollway.emulator.batch_store import BATCHES, BatchSettings, BatchStore
from tollway.emulator.profiles import describe_errors


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def batches_state(request: web.Request) -> web.Response:
    store = request.app[BATCHES]
    return _json({"settings": store.settings.model_dump(), "executions": dict(store.executions),
                  "batches": {batch.id: batch.phase for batch in store.batches.values()}})


async def put_settings(request: web.Request) -> web.Response:
    try:
        given = orjson.loads(await request.read())
        settings = BatchSettings.model_validate(given)
    except orjson.JSONDecodeError as exc:
        return _json({"error": {"message": f"batch settings: the body is not valid JSON: {exc}",
                                "type": "invalid_request_error"}}, 400)
    except ValidationError as exc:
        return _json({"error": {"message": describe_errors(exc, "batch settings"),
                                "type": "invalid_request_error"}}, 400)
    request.app[BATCHES].settings = settings
    return _json({"settings": settings.model_dump()})


async def forget(request: web.Request) -> web.Response:
    request.app[BATCHES].reset()
    return _json({"reset": True})


def add_batch_apis(app: web.Application) -> BatchStore:
    """Serve the Files, Batch and Message Batches APIs and their control routes; the store, for resets."""
    store = app[BATCHES] = BatchStore()
    add_file_routes(app)
    add_batch_routes(app)
    add_message_batch_routes(app)
    app.router.add_get("/_emulator/batches", batches_state)
    app.router.add_put("/_emulator/batches", put_settings)
    app.router.add_delete("/_emulator/batches", forget)
    return store

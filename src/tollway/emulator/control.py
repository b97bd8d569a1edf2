"""The /_emulator/ control API: what tests use to look inside the emulator and to change it live.

A test that checks failover needs to know how many requests each fake provider saw and with what body,
and to switch a model's faults mid-test without restarting the process.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from tollway.emulator.profiles import ConfigError
from tollway.emulator.state import EmulatorState

STATE = web.AppKey("emulator_state", EmulatorState)
# what else a reset forgets (the batch APIs' files and batches): each is called with the `profiles` flag
RESET_HOOKS = web.AppKey("emulator_reset_hooks", list)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _bad(message: str) -> web.Response:
    return _json({"error": {"message": message, "type": "invalid_request_error"}}, status=400)


async def stats(request: web.Request) -> web.Response:
    """Per model: requests received, answers by HTTP status, requests still in flight."""
    return _json(request.app[STATE].stats_json())


async def requests_log(request: web.Request) -> web.Response:
    """The last received requests (oldest first), optionally of one model and at most `limit`."""
    model = request.query.get("model")
    limit_text = request.query.get("limit")
    limit = None
    if limit_text is not None:
        if not limit_text.isdigit() or int(limit_text) < 1:
            return _bad(f"limit must be a positive integer, got {limit_text!r}")
        limit = int(limit_text)
    return _json(request.app[STATE].requests_json(model, limit))


async def put_model(request: web.Request) -> web.Response:
    """Replace one model's profile (fields not given come from the default profile)."""
    name = request.match_info["name"]
    try:
        overrides = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _bad(f"profile for model {name!r}: the body is not valid JSON: {exc}")
    try:
        profile = request.app[STATE].set_profile(name, overrides)
    except ConfigError as exc:
        return _bad(str(exc))
    return _json({"model": name, "profile": profile.public_dict()})


async def get_models(request: web.Request) -> web.Response:
    """The live profiles (api keys redacted)."""
    state = request.app[STATE]
    return _json({"default": state.default.public_dict(),
                  "models": {name: p.public_dict() for name, p in sorted(state.profiles.items())}})


async def reset(request: web.Request) -> web.Response:
    """Forget counters and the request log; body {"profiles": true} also restores the startup profiles."""
    raw = await request.read()
    options = {}
    if raw.strip():
        try:
            options = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _bad(f"reset: the body is not valid JSON: {exc}")
        if not isinstance(options, dict) or not set(options) <= {"profiles"}:
            return _bad('reset: the body may only be {"profiles": true|false}')
    request.app[STATE].reset(profiles=bool(options.get("profiles")))
    for hook in request.app.get(RESET_HOOKS, ()):
        hook(bool(options.get("profiles")))
    return _json({"reset": True, "profiles": bool(options.get("profiles"))})


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_emulator/stats", stats)
    app.router.add_get("/_emulator/requests", requests_log)
    app.router.add_get("/_emulator/models", get_models)
    app.router.add_put("/_emulator/models/{name:.+}", put_model)
    app.router.add_post("/_emulator/reset", reset)

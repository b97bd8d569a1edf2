"""The admin API under /admin/: manage virtual keys and read budgets over HTTP.

Every route needs the admin key (`server.admin_key_env`) as a Bearer token; with no admin key
configured the API answers 404 saying how to turn it on. Writes go to the key store and take effect on
this replica at once and on the others within `keys.refresh_ms` (a revocation at once everywhere
when Redis is shared). Secrets appear once, in the answer to POST /admin/keys.

  GET    /admin/keys                 every key (no secrets)
  POST   /admin/keys                 create: {"name", "team", "budgets", "daily_usd", "monthly_usd", "rpm",
                                              "tpm", "models", "residency", "expires_at", "secret" (import
                                              one, tw_<id>_<hex>)} -> 201 with "secret"
  GET    /admin/keys/{id}            one key
  PATCH  /admin/keys/{id}            change the fields given (null clears a limit)
  POST   /admin/keys/{id}/revoke     revoke (also DELETE /admin/keys/{id})
  POST   /admin/keys/{id}/rotate     {"grace": "24h"} -> a new secret, the old one valid for the grace
  GET    /admin/budgets              budget_status(): every org, team and key budget, read from the counters
  GET    /admin/events               recent alert events (soft thresholds, Redis outages, brownouts)
  /admin/teams...                    teams and their budgets (teams_api.py)

With an admin side installed on the application (ADMIN_SIDE: the gateway installs observe/admin_ui's,
which adds OpenID Connect callers and roles), it decides who the caller is, refuses a write the caller's
role does not allow (403 naming the role), and every write is recorded in the audit log before it is
answered (docs/admin.md).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import orjson
from aiohttp import web

from tollway.accounting.credentials import admin_key_matches, bearer_token
from tollway.accounting.keys.fields import KeyFieldError, grace_period, spec_from_json
from tollway.accounting.keys.records import imported_key_id, new_record, new_secret
from tollway.accounting.keys.store import KEY_STORE_ERRORS, KeyNotFound, KeyStoreError, TeamExists, TeamNotFound
from tollway.core.errors import GatewayError

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission

Handler = Callable[[web.Request], Awaitable[web.Response]]


class AdminSide(Protocol):
    """Who calls the admin API and what they may do (observe/admin_ui/side.py is the gateway's)."""

    async def caller(self, request: web.Request) -> Any:
        """The authenticated caller; raises GatewayError (401, 403 for a bad CSRF token), audited."""

    async def refuse_write(self, request: web.Request, action: str, teams: list[str]) -> None:
        """Raise GatewayError 403 (audited) when the caller may not do `action` on keys of `teams`."""

    async def audit(self, request: web.Request, action: str, target: str, before: dict | None,
                    after: dict | None) -> None:
        """Record a done admin action with the changed fields (secrets removed), before it is answered."""


ADMIN_SIDE = web.AppKey("tollway_admin_side", AdminSide)


def request_key(name: str, kind: type) -> Any:
    """A key for storing on a request: typed where aiohttp has RequestKey, a string on older versions."""
    make = getattr(web, "RequestKey", None)
    return make(name, kind) if make is not None else name


AUDITED = request_key("tollway_admin_audited", bool)  # set on a request once its audit entry is recorded


def admin_routes(admission: "Admission") -> list[web.RouteDef]:
    from tollway.accounting.teams_api import TeamRoutes

    api = AdminApi(admission)
    guard = api.guarded
    return [
        web.get("/admin/keys", guard(api.list_keys)),
        web.post("/admin/keys", guard(api.create_key)),
        web.get("/admin/keys/{key_id}", guard(api.get_key)),
        web.patch("/admin/keys/{key_id}", guard(api.update_key)),
        web.post("/admin/keys/{key_id}/revoke", guard(api.revoke_key)),
        web.post("/admin/keys/{key_id}/rotate", guard(api.rotate_key)),
        web.delete("/admin/keys/{key_id}", guard(api.revoke_key)),
        web.get("/admin/budgets", guard(api.budgets)),
        web.get("/admin/events", guard(api.events)),
        *TeamRoutes(api).routes(),
    ]


class AdminApi:
    def __init__(self, admission: "Admission") -> None:
        self.admission = admission

    def guarded(self, handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.Response:
            side = request.app.get(ADMIN_SIDE)
            if side is not None:
                return await self._as_caller(side, request, handler)
            if self.admission.admin_key is None:
                return error_reply(404, "The admin API is off: set server.admin_key_env to the name of an environment "
                                   "variable holding the admin key.", "admin_api_disabled")
            if not admin_key_matches(self.admission.admin_key, bearer_token(request)):
                return error_reply(401, "The admin API needs the admin key as 'Authorization: Bearer <key>'.",
                              "invalid_admin_key")
            return await self._answer(request, handler)
        return run

    async def _as_caller(self, side: AdminSide, request: web.Request, handler: Handler) -> web.Response:
        """Key routes check the key's team themselves; any other write is the admin role's. A write that
        recorded no audit entry of its own gets a plain one, so no admin write goes unrecorded."""
        write = request.method not in ("GET", "HEAD", "OPTIONS")
        try:
            await side.caller(request)
            if write and not request.path.startswith("/admin/keys"):
                await side.refuse_write(request, "admin.write", [])
            response = await self._answer(request, handler)
            if write and response.status < 400 and not request.get(AUDITED):
                await side.audit(request, "admin.write", f"{request.method} {request.path}", None,
                                 {"status": response.status})
            return response
        except GatewayError as exc:
            return exc.response({})

    async def _answer(self, request: web.Request, handler: Handler) -> web.Response:
        try:
            return await handler(request)
        except KeyNotFound as exc:
            return error_reply(404, str(exc), "key_not_found")
        except TeamNotFound as exc:
            return error_reply(404, str(exc), "team_not_found")
        except TeamExists as exc:
            return error_reply(409, str(exc), "team_exists")
        except KeyFieldError as exc:
            return error_reply(400, str(exc), "invalid_field")
        except KEY_STORE_ERRORS as exc:
            return error_reply(503, str(exc), "key_store_unavailable")

    @property
    def models(self) -> list[str]:
        """The names a per-model budget entry may use: route groups and aliased deployments."""
        return list(self.admission.holds.groups)

    async def list_keys(self, request: web.Request) -> web.Response:
        records = await self.call("list")
        return json_reply({"object": "list", "data": [r.public() for r in records]})

    async def create_key(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        given = body.pop("secret", None) if isinstance(body, dict) else None
        spec = spec_from_json(body, self.models)
        if not spec.name:
            raise KeyFieldError("name: required, e.g. {\"name\": \"ci-bot\"}")
        key_id, secret = imported(given) if given is not None else new_secret()
        action = "key.imported" if given is not None else "key.created"
        await may_write(request, action, [spec.team or ""])
        if given is not None and await self.call("get", key_id) is not None:
            return error_reply(409, f"secret: key id {key_id} is already in use", "key_exists")
        record = await self.call("create", new_record(key_id, secret, spec))
        self.admission.key_changed(record)
        await audit(request, action, record.id, None, record.public())
        return json_reply({**record.public(), "secret": secret}, 201)

    async def rotate_key(self, request: web.Request) -> web.Response:
        body = await read_json(request) if request.can_read_body else {}
        grace = body.get("grace", "24h") if isinstance(body, dict) else None
        if not isinstance(grace, str):
            raise KeyFieldError("grace: expected a duration like \"24h\"")
        try:
            until = (datetime.now(timezone.utc) + grace_period(grace)).isoformat()
        except KeyFieldError as exc:
            raise KeyFieldError(f"grace: {exc}") from None
        key_id = request.match_info["key_id"]
        before = await self._existing(request, "key.rotated", key_id)
        secret = f"tw_{key_id}_{new_secret()[1].rsplit('_', 1)[1]}"
        record = await self.call("rotate", key_id, secret, until)
        self.admission.key_changed(record)
        await audit(request, "key.rotated", key_id, {**before, "grace": None}, {**record.public(), "grace": grace})
        return json_reply({**record.public(), "secret": secret})

    async def get_key(self, request: web.Request) -> web.Response:
        record = await self.call("get", request.match_info["key_id"])
        if record is None:
            raise KeyNotFound(request.match_info["key_id"])
        return json_reply(record.public())

    async def update_key(self, request: web.Request) -> web.Response:
        spec = spec_from_json(await read_json(request), self.models)
        key_id = request.match_info["key_id"]
        before = await self._existing(request, "key.changed", key_id, spec.team)
        record = await self.call("update", key_id, spec)
        self.admission.key_changed(record)
        await audit(request, "key.changed", key_id, before, record.public())
        return json_reply(record.public())

    async def revoke_key(self, request: web.Request) -> web.Response:
        before = await self._existing(request, "key.revoked", request.match_info["key_id"])
        record = await self.call("revoke", request.match_info["key_id"])
        self.admission.key_changed(record)
        await self.admission.counters.revoke([record.id])
        await audit(request, "key.revoked", record.id, before, record.public())
        return json_reply(record.public())

    async def budgets(self, request: web.Request) -> web.Response:
        return json_reply({"object": "list", "data": await self.admission.budget_status_now(),
                      "counters": "redis" if self.admission.counters.shared else "local",
                      "counters_down": self.admission.counters.down})

    async def events(self, request: web.Request) -> web.Response:
        return json_reply({"object": "list", "data": list(self.admission.events)})

    async def _existing(self, request: web.Request, action: str, key_id: str, new_team: str | None = None) -> dict:
        """The key's fields before a write, after checking the caller may write keys of its team (and of
        the team it moves to)."""
        record = await self.call("get", key_id)
        if record is None:
            raise KeyNotFound(key_id)
        await may_write(request, action, [record.team or ""] + ([new_team] if new_team is not None else []))
        return record.public()

    async def call(self, method: str, *args):
        cache = self.admission.cache
        if cache is None:
            raise KeyStoreError("the key store is not open yet")
        return await cache.call(getattr(cache.store, method), *args)


async def may_write(request: web.Request, action: str, teams: list[str]) -> None:
    """Raise GatewayError 403 (audited) when the admin side says the caller may not take `action`."""
    side = request.app.get(ADMIN_SIDE)
    if side is not None:
        await side.refuse_write(request, action, teams)


async def audit(request: web.Request, action: str, target: str, before: dict | None, after: dict | None) -> None:
    """Record a done write in the admin side's audit log (a no-op without an admin side)."""
    side = request.app.get(ADMIN_SIDE)
    if side is not None:
        await side.audit(request, action, target, before, after)


async def read_json(request: web.Request) -> object:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise KeyFieldError(f"body: not valid JSON ({exc})") from None


def json_reply(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_reply(status: int, message: str, code: str) -> web.Response:
    return json_reply({"error": {"message": message, "type": "admin_error", "code": code, "param": None}}, status)


def imported(secret: object) -> tuple[str, str]:
    """(key id, secret) of a secret given to import; KeyFieldError (400) for the wrong shape."""
    if not isinstance(secret, str):
        raise KeyFieldError("secret: expected a string shaped tw_<id>_<hex>")
    try:
        return imported_key_id(secret), secret
    except ValueError as exc:
        raise KeyFieldError(f"secret: {exc}") from None

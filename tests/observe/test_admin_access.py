"""The admin side's guard on admin API routes, in process: a write route that does not check teams itself
is the admin role's, every successful write is audited once, and a browser session's write needs its
CSRF token."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tollway.accounting.admin_api import ADMIN_SIDE, AdminApi, audit
from tollway.ledger.audit import AuditLog
from tollway.ledger.audit_store import AuditQuery, SqliteAuditStore
from tollway.observe.admin_ui.access import AdminAccess, session_data
from tollway.observe.admin_ui.session import SESSION_COOKIE, CookieSigner
from tollway.observe.roles import TEAM_ADMIN, VIEWER, Principal

ADMIN_KEY = "admin-key-in-process-41"
SIGNER = CookieSigner(b"s" * 32)


async def _team_route(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _self_audited(request: web.Request) -> web.Response:
    await audit(request, "team.changed", "search", {"limit": "1"}, {"limit": "2"})
    return web.json_response({"ok": True})


def _cookie(role: str, teams: frozenset[str] = frozenset()) -> str:
    principal = Principal("oidc", f"sub-{role}", role, f"{role}@example.com", teams=teams, csrf="csrf-1")
    return f"{SESSION_COOKIE}={SIGNER.sign('session', session_data(principal), 60)}"


def test_unknown_writes_are_the_admins_and_always_audited(tmp_path):
    async def run():
        log = AuditLog(SqliteAuditStore(tmp_path / "ledger.db"), secrets=[ADMIN_KEY])
        app = web.Application()
        app[ADMIN_SIDE] = AdminAccess(ADMIN_KEY, None, None, SIGNER, log)
        guard = AdminApi(None).guarded  # type: ignore[arg-type]  # these routes never reach admission
        app.router.add_post("/admin/teams", guard(_team_route))
        app.router.add_patch("/admin/teams/search", guard(_self_audited))
        async with TestClient(TestServer(app)) as client:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            assert (await client.post("/admin/teams", headers=admin)).status == 200
            assert (await client.patch("/admin/teams/search", headers=admin)).status == 200
            lead = {"Cookie": _cookie(TEAM_ADMIN, frozenset({"search"})), "X-CSRF-Token": "csrf-1"}
            refused = await client.post("/admin/teams", headers=lead)
            body = await refused.json()
            assert refused.status == 403 and "team_admin" in body["error"]["message"]
            viewer = {"Cookie": _cookie(VIEWER), "X-CSRF-Token": "csrf-1"}
            assert (await client.patch("/admin/teams/search", headers=viewer)).status == 403
            no_csrf = await client.post("/admin/teams", headers={"Cookie": _cookie(TEAM_ADMIN, frozenset({"x"}))})
            assert no_csrf.status == 403 and (await no_csrf.json())["error"]["code"] == "csrf_failed"
            assert (await client.get("/admin/teams-nope")).status == 404
            assert (await client.post("/admin/teams")).status == 401
        entries = await log.read(AuditQuery())
        await log.close()
        return [(e["action"], e["outcome"], e["target"], e["role"]) for e in reversed(entries)]

    assert asyncio.run(run()) == [
        ("admin.write", "ok", "POST /admin/teams", "admin"),
        ("team.changed", "ok", "search", "admin"),  # the route's own entry, not a second plain one
        ("admin.write", "refused", "", "team_admin"),
        ("admin.write", "refused", "", "viewer"),
        ("admin.refused", "refused", "/admin/teams", ""),  # no CSRF token
        ("admin.refused", "refused", "/admin/teams", ""),  # no credential
    ]

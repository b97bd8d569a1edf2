"""GET /dashboard: one page an on-call engineer opens to see spend, latency, errors, breakers and alerts.

The page is static HTML, CSS and vanilla JavaScript shipped in the package (dashboard_assets/), with no
build step and no third-party front-end code: it fetches /dashboard/data.json every `refresh_s` seconds
and redraws. Everything under /dashboard is behind the admin key (admin_auth.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import orjson
from aiohttp import web

from tollway.core.errors import GatewayError
from tollway.observe.admin_auth import AdminGate

ASSETS_DIR = Path(__file__).with_name("dashboard_assets")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
_NO_STORE = {"Cache-Control": "no-store"}


@cache
def _asset(name: str) -> tuple[bytes, str] | None:
    path = ASSETS_DIR / name
    if path.parent != ASSETS_DIR or path.suffix not in _TYPES or not path.is_file():
        return None
    return path.read_bytes(), _TYPES[path.suffix]


class Dashboard:
    def __init__(self, gate: AdminGate, data: Callable[[], dict], refresh_s: float) -> None:
        self._gate = gate
        self._data = data
        self._refresh_ms = int(refresh_s * 1000)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/dashboard", self._page), web.get("/dashboard/", self._page),
                web.get("/dashboard/data.json", self._json),
                web.get("/dashboard/assets/{name}", self._static)]

    async def _page(self, request: web.Request) -> web.StreamResponse:
        try:
            login = self._gate.login(request)
            if login is not None:
                return login
            self._gate.check(request)
        except GatewayError as exc:
            return _error_page(exc)
        page, _ = _asset("index.html")  # type: ignore[misc]
        html = page.replace(b"{{REFRESH_MS}}", str(self._refresh_ms).encode())
        return web.Response(body=html, content_type="text/html", charset="utf-8", headers=_NO_STORE)

    async def _json(self, request: web.Request) -> web.Response:
        try:
            self._gate.check(request)
        except GatewayError as exc:
            return exc.response({})
        return web.Response(body=orjson.dumps(self._data(), option=orjson.OPT_NON_STR_KEYS),
                            content_type="application/json", headers=_NO_STORE)

    async def _static(self, request: web.Request) -> web.Response:
        try:
            self._gate.check(request)
        except GatewayError as exc:
            return exc.response({})
        found = _asset(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return web.Response(body=body, content_type=content_type)


def _error_page(exc: GatewayError) -> web.Response:
    from html import escape

    body = (f"<!doctype html><meta charset=utf-8><title>tollway dashboard</title>"
            f"<h1>tollway dashboard</h1><p>{escape(exc.message)}</p>")
    return web.Response(status=exc.status, body=body.encode(), content_type="text/html", charset="utf-8")

"""The emulator's HTTP app: dialect chosen by path prefix, plus health, metrics and control routes.

`/{dialect}/v1/...` answers as that provider; unprefixed `/v1/...` answers as OpenAI (and `/v1/messages`
as Anthropic). One process can thus stand in for several providers at once in a gateway test.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator import pipeline
from tollway.emulator.batch_control import add_batch_apis
from tollway.emulator.control import RESET_HOOKS, STATE, add_control_routes
from tollway.emulator.dialects import DIALECTS
from tollway.emulator.metrics import NAMES as METRIC_DIALECTS
from tollway.emulator.metrics import prometheus_text
from tollway.emulator.profiles import DIALECT_NAMES, EmulatorConfig, build_config
from tollway.emulator.state import EmulatorState

ENDPOINTS = {"chat/completions": "chat", "completions": "completions", "embeddings": "embeddings",
             "responses": "responses"}
PLACEHOLDER_MODEL = "tollway-emulator"


def _unknown_dialect(name: str) -> web.Response:
    if name == "anthropic":
        message = "the anthropic dialect serves POST /anthropic/v1/messages and GET /anthropic/v1/models only"
    else:
        message = f"unknown dialect {name!r} in the path; use one of: {', '.join(DIALECT_NAMES)}"
    body = {"error": {"message": message, "type": "not_found_error"}}
    return web.Response(body=orjson.dumps(body), status=404, content_type="application/json")


def _dialect_of(request: web.Request) -> str | None:
    name = request.match_info.get("dialect", "openai")
    return name if name in DIALECTS else None


def _generation_handler(endpoint: str):
    async def handler(request: web.Request) -> web.StreamResponse:
        dialect = _dialect_of(request)
        if dialect is None:
            return _unknown_dialect(request.match_info["dialect"])
        return await pipeline.handle(request, request.app[STATE], dialect, endpoint)
    return handler


async def messages(request: web.Request) -> web.StreamResponse:
    return await pipeline.handle(request, request.app[STATE], "anthropic", "messages")


async def gemini_generate(request: web.Request) -> web.StreamResponse:
    """POST /gemini/v1beta/models/{model}:generateContent or :streamGenerateContent?alt=sse."""
    model, _, method = request.match_info["call"].partition(":")
    if method not in ("generateContent", "streamGenerateContent"):
        return _google_error(404, "NOT_FOUND", f"method {method!r} is not found for model {model!r}")
    stream = method == "streamGenerateContent"
    if stream and request.query.get("alt") != "sse":
        return _google_error(400, "INVALID_ARGUMENT", "the emulator streams Gemini answers with alt=sse only")
    return await pipeline.handle(request, request.app[STATE], "gemini", "generate",
                                 {"_url_model": model, "_url_stream": stream})


async def azure_deployment(request: web.Request) -> web.StreamResponse:
    """POST /azure/openai/deployments/{deployment}/chat/completions?api-version=... : the deployment names
    the model; a request without api-version is not routed (Azure answers 404)."""
    if not request.query.get("api-version"):
        body = {"error": {"code": "404", "message": "Resource not found"}}
        return web.Response(body=orjson.dumps(body), status=404, content_type="application/json")
    return await pipeline.handle(request, request.app[STATE], "azure", "chat",
                                 {"model": request.match_info["deployment"]})


async def azure_v1(request: web.Request) -> web.StreamResponse:
    """POST /azure/openai/v1/chat/completions: the v1 form, no api-version, the model in the body."""
    return await pipeline.handle(request, request.app[STATE], "azure", "chat")


def _google_error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": code}}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def anthropic_models(request: web.Request) -> web.Response:
    """Anthropic's paginated model list shape."""
    names = request.app[STATE].known_models() or [PLACEHOLDER_MODEL]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(request.app[STATE].started))
    data = [{"type": "model", "id": name, "display_name": name, "created_at": created} for name in names]
    body = {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    dialect = _dialect_of(request)
    if dialect is None:
        return _unknown_dialect(request.match_info["dialect"])
    names = request.app[STATE].known_models() or [PLACEHOLDER_MODEL]
    created = int(request.app[STATE].started)
    data = [{"id": name, "object": "model", "created": created, "owned_by": dialect} for name in names]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    dialect = request.match_info["dialect"]
    if dialect not in METRIC_DIALECTS:
        return web.Response(status=404, text=f"{dialect} serves no Prometheus /metrics\n")
    return web.Response(text=prometheus_text(request.app[STATE], dialect),
                        content_type="text/plain", charset="utf-8", headers={"X-Prometheus-Format": "0.0.4"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def dialect_health(request: web.Request) -> web.Response:
    """Each self-hosted server's own health answer (vLLM/SGLang empty 200, LMDeploy/llama.cpp JSON)."""
    dialect = request.match_info["dialect"]
    if dialect == "lmdeploy":
        return web.json_response({"status": "healthy"})
    if dialect == "llamacpp":
        return web.json_response({"status": "ok"})
    if dialect in ("vllm", "sglang"):
        return web.Response(status=200)
    return web.Response(status=404, text=f"{dialect} has no /health route\n")


async def ollama_root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


def create_app(config: EmulatorConfig | dict[str, Any] | None = None) -> web.Application:
    """The emulator as an aiohttp application; `config` may be a validated config or a raw mapping."""
    if not isinstance(config, EmulatorConfig):
        config = build_config(config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = EmulatorState(config)
    router = app.router
    router.add_get("/healthz", healthz)
    router.add_get("/anthropic/v1/models", anthropic_models)
    add_control_routes(app)
    app[RESET_HOOKS] = [add_batch_apis(app).reset]  # OpenAI/DashScope files and batches, Message Batches
    for prefix in ("", "/{dialect}"):
        for path, endpoint in ENDPOINTS.items():
            router.add_post(f"{prefix}/v1/{path}", _generation_handler(endpoint))
        router.add_get(f"{prefix}/v1/models", list_models)
    router.add_post("/v1/messages", messages)
    router.add_post("/anthropic/v1/messages", messages)
    router.add_post("/gemini/v1beta/models/{call}", gemini_generate)
    router.add_post("/azure/openai/deployments/{deployment}/chat/completions", azure_deployment)
    router.add_post("/azure/openai/v1/chat/completions", azure_v1)
    router.add_get("/{dialect}/metrics", metrics)
    router.add_get("/{dialect}/health", dialect_health)
    router.add_get("/ollama", ollama_root)
    router.add_get("/ollama/", ollama_root)
    return app


def run(host: str = "127.0.0.1", port: int = 9100, config: EmulatorConfig | dict[str, Any] | None = None,
        sock: Any = None) -> None:
    """Serve until SIGINT/SIGTERM. Hung requests are cancelled when their client disconnects. With `sock`
    (bound and listening already), serve on it: a busy port was then reported before anything printed."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    app = create_app(config)
    where = {"sock": sock} if sock is not None else {"host": host, "port": port}
    if sock is not None:
        port = sock.getsockname()[1]
    print(f"tollway emulate: listening on http://{host}:{port} ({time.strftime('%H:%M:%S')})", flush=True)
    web.run_app(app, **where, print=None, access_log=None, handler_cancellation=True,
                shutdown_timeout=1.0, loop=loop)

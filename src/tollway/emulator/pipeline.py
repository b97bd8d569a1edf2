"""One generation request from arrival to last byte: parse, count, authenticate, fault, limit, answer.

The order mirrors a real provider: a bad key or an injected 429 is answered at once without using a
run slot; a context overflow is refused before queueing; only admitted work occupies a slot and is paced.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import orjson
from aiohttp import web

from tollway.emulator import error_bodies as errors
from tollway.emulator.agent_traffic import (
    NO_PLAN,
    AgentPlan,
    chat_plan,
    gemini_plan,
    messages_plan,
    responses_plan,
    with_content,
)
from tollway.emulator.anthropic_messages import write_message, write_message_stream
from tollway.emulator.dialects import ANTHROPIC, DIALECTS, GEMINI
from tollway.emulator.embeddings import embeddings_json
from tollway.emulator.faults import ERROR_KINDS
from tollway.emulator.gemini_answers import blocked_response, write_generate, write_generate_stream
from tollway.emulator.openai_answers import Answer, write_plain, write_stream
from tollway.emulator.pacing import build_schedule
from tollway.emulator.profiles import ModelProfile
from tollway.emulator.rate_headers import rate_headers
from tollway.emulator.request_shape import (
    InvalidRequest,
    RequestShape,
    chat_shape,
    completions_shape,
    embedding_inputs,
    embeddings_shape,
    generate_shape,
    messages_shape,
    responses_shape,
)
from tollway.emulator.responses_answers import write_response, write_response_stream
from tollway.emulator.state import Admission, EmulatorState
from tollway.emulator.tokens import plan_output

SHAPERS: dict[str, Callable[[dict], RequestShape]] = {
    "chat": chat_shape, "completions": completions_shape, "messages": messages_shape, "embeddings": embeddings_shape,
    "generate": generate_shape, "responses": responses_shape}
# dialects whose moderation refuses the request with an error (the others end the answer with content_filter;
# Gemini blocks the prompt with promptFeedback)
FILTER_AS_ERROR = frozenset({"deepseek", "qwen", "kimi", "glm", "azure"})
NATIVE_ENDPOINTS = {"messages": "anthropic", "generate": "gemini"}  # endpoints only one dialect serves
CACHE_WRITE_DIALECTS = frozenset({"anthropic", "qwen"})


class Outcome:
    """The status a request ended with, set as soon as it is decided (None: never answered)."""

    status: int | None = None


def json_error(dialect: str, kind: str, ctx: errors.ErrorContext, headers: dict[str, str] | None = None,
               outcome: Outcome | None = None) -> web.Response:
    status, body = errors.error_body(dialect, kind, ctx)
    if outcome is not None:
        outcome.status = status
    return web.Response(body=orjson.dumps(body), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


def resolve_dialect(path_dialect: str, profile: ModelProfile, endpoint: str) -> str:
    """A profile's pinned dialect wins on OpenAI-protocol paths; /v1/messages is always Anthropic, a
    generateContent path always Gemini."""
    if endpoint in NATIVE_ENDPOINTS:
        return NATIVE_ENDPOINTS[endpoint]
    if profile.dialect and profile.dialect not in ("anthropic", "gemini"):
        return profile.dialect
    return path_dialect


async def handle(request: web.Request, state: EmulatorState, path_dialect: str, endpoint: str,
                 url_fields: dict[str, Any] | None = None) -> web.StreamResponse:
    """Serve one chat / completions / messages / generate / embeddings request. `url_fields`: what the
    path says that the body does not (Gemini's model and method, Azure's deployment)."""
    error_dialect = NATIVE_ENDPOINTS.get(endpoint, path_dialect)
    try:
        body = orjson.loads(await request.read())
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        if url_fields:
            body = {**body, **url_fields}
        shape = SHAPERS[endpoint](body)
    except orjson.JSONDecodeError as exc:
        return json_error(error_dialect, errors.INVALID_REQUEST, errors.ErrorContext(
            message=f"the request body is not valid JSON: {exc}"))
    except InvalidRequest as exc:
        return json_error(error_dialect, errors.INVALID_REQUEST, errors.ErrorContext(message=str(exc)))
    dialect = resolve_dialect(path_dialect, state.profile(shape.model), endpoint)
    admission = state.admit(shape.model, dialect, request.path, body, request.headers)
    outcome = Outcome()
    try:
        return await _serve(request, state, admission, shape, body, endpoint, outcome)
    finally:
        state.finish(shape.model, outcome.status)


async def _serve(request: web.Request, state: EmulatorState, admission: Admission, shape: RequestShape, body: dict,
                 endpoint: str, outcome: Outcome) -> web.StreamResponse:
    profile, dialect, fault = admission.profile, admission.dialect, admission.fault
    recent = state.recent_requests(shape.model)
    ctx = errors.ErrorContext(model=shape.model, prompt=shape.prompt_tokens, completion=shape.limit or 0,
                              window=profile.context_window or 0)
    if not profile.accepts(admission.key):
        return json_error(dialect, errors.AUTH, ctx, outcome=outcome)
    if fault and fault.kind == "hang":
        if fault.hang_s is None:
            await asyncio.Event().wait()  # until the client disconnects (the handler is then cancelled)
        else:
            await asyncio.sleep(fault.hang_s)
        fault = None
    if fault and fault.kind == "content_filter" and dialect == "gemini":
        outcome.status = 200
        return blocked_response({})
    if fault and (fault.kind in ERROR_KINDS or (fault.kind == "content_filter" and dialect in FILTER_AS_ERROR)):
        return _fault_error(dialect, fault, ctx, recent, outcome)
    try:
        agent = agent_plan(dialect, endpoint, body, profile)
    except InvalidRequest as exc:
        return json_error(dialect, errors.INVALID_REQUEST, errors.ErrorContext(message=str(exc)), outcome=outcome)
    limit, refusal = _fit_context(dialect, shape, profile, ctx, endpoint)
    if refusal is not None:
        outcome.status = refusal.status
        return refusal
    headers = rate_headers(dialect, recent, shape.prompt_tokens)
    load = state.load(dialect, shape.model)
    async with state.slots(shape.model, profile.max_running).hold(load):
        if endpoint == "embeddings":
            return _embeddings(shape, body, profile, headers, outcome)
        answer = plan_answer(dialect, endpoint, shape, agent, profile, fault, limit)
        outcome.status = 200
        resp = await _write(request, answer, headers, endpoint, shape.stream, body)
        if not answer.schedule.cut:
            load.prompt_tokens += answer.prompt
            load.generation_tokens += answer.schedule.emitted * answer.agent.choices
            load.finished[answer.schedule.finish_reason] += 1
        return resp


def _fault_error(dialect: str, fault: Any, ctx: errors.ErrorContext, recent: int, outcome: Outcome) -> web.Response:
    kind = fault.kind
    ctx = errors.ErrorContext(model=ctx.model, status=fault.status, message=fault.message, prompt=ctx.prompt,
                              completion=ctx.completion, retry_after_s=fault.retry_after_s,
                              window=_forced_window(ctx))
    headers = {}
    if kind == "rate_limit":
        headers = rate_headers(dialect, recent, ctx.prompt, limited=True, retry_after_s=fault.retry_after_s)
    return json_error(dialect, kind, ctx, headers, outcome)


def _forced_window(ctx: errors.ErrorContext) -> int:
    """The window a forced context_length fault reports: the configured one if the request exceeds it,
    else one token less than the request, so the message is always self-consistent."""
    over = max(1, ctx.prompt + ctx.completion - 1)
    return min(ctx.window, over) if ctx.window else over


def _fit_context(dialect: str, shape: RequestShape, profile: ModelProfile, ctx: errors.ErrorContext,
                 endpoint: str) -> tuple[int | None, web.Response | None]:
    """Refuse a prompt that does not fit, or clip the output to the room left, as the dialect does.

    vLLM, SGLang and the hosted APIs refuse prompt + max_tokens > window; LMDeploy and llama.cpp refuse
    only an over-long prompt and stop the output at the window; Ollama never refuses (it truncates).
    """
    window, prompt, limit = profile.context_window, shape.prompt_tokens, shape.limit
    if window is None or dialect == "ollama":
        return limit, None
    if endpoint == "embeddings":
        refuse = prompt > window
    elif dialect in ("lmdeploy", "llamacpp"):
        refuse = prompt >= window if dialect == "lmdeploy" else prompt > window
    else:
        refuse = prompt + (limit or 0) > window or prompt >= window
    if refuse:
        return limit, json_error(dialect, errors.CONTEXT_LENGTH, ctx)
    room = window - prompt
    return (room if limit is None else min(limit, room)), None


def agent_plan(dialect: str, endpoint: str, body: dict, profile: ModelProfile) -> AgentPlan:
    """Tool calls, choices, logprobs and structured output as this endpoint's request asks for them."""
    if endpoint == "chat":
        return chat_plan(body, dialect, profile.tool_calls)
    if endpoint == "responses":
        return responses_plan(body, profile.tool_calls)
    if endpoint == "messages":
        return messages_plan(body, profile.tool_calls)
    if endpoint == "generate":
        return gemini_plan(body, profile.tool_calls)
    return NO_PLAN


def plan_answer(dialect: str, endpoint: str, shape: RequestShape, agent: AgentPlan, profile: ModelProfile,
                 fault: Any, limit: int | None) -> Answer:
    prompt = shape.prompt_tokens
    if dialect == "ollama" and profile.context_window is not None:
        prompt = min(prompt, profile.context_window)  # Ollama silently truncates the prompt
    reasoning = profile.reasoning_tokens if endpoint != "completions" else 0
    plan = plan_output(prompt=prompt, output_tokens=profile.output_tokens, reasoning_tokens=reasoning, limit=limit,
                       force_limit=shape.force_limit, cache_hit_ratio=profile.cache_hit_ratio,
                       cache_write_ratio=profile.cache_write_ratio if dialect in CACHE_WRITE_DIALECTS else 0.0)
    visible = dialect in NATIVE_ENDPOINTS.values() or DIALECTS[dialect].reasoning_field is not None
    schedule = build_schedule(plan, profile, fault, reasoning_visible=visible and endpoint != "responses")
    if agent.structured is not None:
        schedule = with_content(schedule, agent.structured)
    loop_now = asyncio.get_running_loop().time()
    if dialect == "anthropic":
        return Answer(ANTHROPIC, "messages", shape.model, schedule, plan.prompt_tokens, plan.cached_tokens,
                      plan.cache_write_tokens, loop_now, profile.keepalive_ms / 1000,
                      cache_write_1h=round(plan.cache_write_tokens * profile.cache_write_1h_share), agent=agent)
    if dialect == "gemini":
        return Answer(GEMINI, "generate", shape.model, schedule, plan.prompt_tokens, plan.cached_tokens, 0,
                      loop_now, profile.keepalive_ms / 1000, agent=agent)
    d = DIALECTS[dialect]
    return Answer(d, endpoint, shape.model, schedule, plan.prompt_tokens, plan.cached_tokens, plan.cache_write_tokens,
                  loop_now, profile.keepalive_ms / 1000, include_usage=d.stream_include_usage(shape.stream_options),
                  continuous_usage=d.stream_continuous_usage(shape.stream_options),
                  agent=agent)


async def _write(request: web.Request, answer: Answer, headers: dict[str, str], endpoint: str,
                 stream: bool, body: dict) -> web.StreamResponse:
    if endpoint == "generate":
        return await (write_generate_stream if stream else write_generate)(request, answer, headers)
    if endpoint == "messages":
        return await (write_message_stream if stream else write_message)(request, answer, headers)
    if endpoint == "responses":
        return await (write_response_stream if stream else write_response)(request, answer, headers, body)
    return await (write_stream if stream else write_plain)(request, answer, headers)


def _embeddings(shape: RequestShape, body: dict, profile: ModelProfile, headers: dict[str, str],
                outcome: Outcome) -> web.Response:
    payload = embeddings_json(shape.model, embedding_inputs(body), body.get("dimensions") or profile.embedding_dim,
                              body.get("encoding_format") or "float", shape.prompt_tokens)
    outcome.status = 200
    return web.Response(body=orjson.dumps(payload), headers={**headers, "Content-Type": "application/json"})

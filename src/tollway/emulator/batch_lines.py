"""One batch line answered as the emulator answers that request live: same tokens, usage shape and faults.

A provider's batch runs each line through its ordinary endpoint, so a line's body is the endpoint's own
non-streamed answer with its usage (the gateway prices a batch line from it), and the model's profile
(output size, reasoning, cache shares, context window, injected faults) applies exactly as it does live.
A configured partial failure (every Nth line) answers with the dialect's own error body. DashScope's batch
does not use the context cache (https://www.alibabacloud.com/help/en/model-studio/batch-interfaces-compatible-with-openai,
"Billing"), so its lines report no cached tokens; an Anthropic batch result's usage names service_tier
"batch" (the Messages API's usage.service_tier values).
"""

from __future__ import annotations

from typing import Any

from tollway.emulator import error_bodies as errors
from tollway.emulator.anthropic_messages import message_json
from tollway.emulator.batch_store import BatchSettings, Line, LineResult
from tollway.emulator.embeddings import embeddings_json
from tollway.emulator.faults import ERROR_KINDS
from tollway.emulator.openai_answers import answer_json
from tollway.emulator.pipeline import FILTER_AS_ERROR, SHAPERS, agent_plan, plan_answer
from tollway.emulator.request_shape import InvalidRequest, embedding_inputs
from tollway.emulator.state import EmulatorState

#: A line's url -> the emulator's endpoint name.
LINE_ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings",
                  "/v1/messages": "messages"}
NO_BATCH_CACHE = frozenset({"qwen"})


class LineRunner:
    """Answers batch lines of one dialect against the emulator's live profiles and counters."""

    def __init__(self, state: EmulatorState, dialect: str, path_prefix: str) -> None:
        self.state = state
        self.dialect = dialect
        self.path_prefix = path_prefix

    def __call__(self, line: Line, position: int, settings: BatchSettings) -> LineResult:
        endpoint = LINE_ENDPOINTS.get(line.url)
        if endpoint is None or not isinstance(line.body, dict):
            return self._error(errors.INVALID_REQUEST, errors.ErrorContext(
                message=f"the line's url {line.url!r} is not served in a batch here" if endpoint is None
                else "the line's body must be a JSON object"))
        try:
            shape = SHAPERS[endpoint](line.body)
        except InvalidRequest as exc:
            return self._error(errors.INVALID_REQUEST, errors.ErrorContext(message=str(exc)))
        admission = self.state.admit(shape.model, self.dialect, self.path_prefix + line.url, line.body,
                                     {"x-tollway-batch-line": line.custom_id})
        result = self._answer(endpoint, shape, line.body, admission, position, settings)
        self.state.finish(shape.model, result.status)
        return result

    def _answer(self, endpoint: str, shape: Any, body: dict, admission: Any, position: int,
                settings: BatchSettings) -> LineResult:
        profile, fault = admission.profile, admission.fault
        ctx = errors.ErrorContext(model=shape.model, prompt=shape.prompt_tokens, completion=shape.limit or 0,
                                  window=profile.context_window or 0)
        if settings.fail_every is not None and position % settings.fail_every == 0:
            status = settings.fail_status if settings.fail_kind == "server_error" else None
            return self._error(settings.fail_kind, _with_status(ctx, status))
        if fault is not None and (fault.kind in ERROR_KINDS or (fault.kind == "content_filter" and
                                                                self.dialect in FILTER_AS_ERROR)):
            return self._error(fault.kind, _with_status(ctx, fault.status))
        window = profile.context_window
        if window is not None and (shape.prompt_tokens + (shape.limit or 0) > window or shape.prompt_tokens >= window):
            return self._error(errors.CONTEXT_LENGTH, ctx)
        if endpoint == "embeddings":
            payload = embeddings_json(shape.model, embedding_inputs(body), body.get("dimensions") or
                                      profile.embedding_dim, body.get("encoding_format") or "float",
                                      shape.prompt_tokens)
            return LineResult("ok", 200, payload)
        if self.dialect in NO_BATCH_CACHE:
            profile = profile.model_copy(update={"cache_hit_ratio": 0.0, "cache_write_ratio": 0.0})
        fault = fault if fault is not None and fault.kind == "content_filter" else None
        limit = shape.limit if window is None else min(shape.limit or window, window - shape.prompt_tokens)
        agent = agent_plan(self.dialect, endpoint, body, profile)
        answer = plan_answer(self.dialect, endpoint, shape, agent, profile, fault, limit)
        if endpoint == "messages":
            message = message_json(answer)
            message["usage"]["service_tier"] = "batch"  # Anthropic's usage names the tier a batch ran in
            return LineResult("ok", 200, message)
        return LineResult("ok", 200, answer_json(answer))

    def _error(self, kind: str, ctx: errors.ErrorContext) -> LineResult:
        status, body = errors.error_body(self.dialect, kind, ctx)
        return LineResult("error", status, body)


def _with_status(ctx: errors.ErrorContext, status: int | None) -> errors.ErrorContext:
    return errors.ErrorContext(model=ctx.model, status=status, prompt=ctx.prompt, completion=ctx.completion,
                               window=ctx.window)

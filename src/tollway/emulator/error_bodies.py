"""Error answers in each dialect: HTTP status, envelope shape and the provider's own type/code/message.

A gateway decides retry, failover or give-up from these, so they follow the providers' documented
examples exactly where one exists (marked "verified" in docs/emulator.md) and a
plausible reading of the provider's table where none does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

AUTH = "auth"
RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
OVERLOADED = "overloaded"
INSUFFICIENT_BALANCE = "insufficient_balance"
CONTENT_FILTER = "content_filter"
CONTEXT_LENGTH = "context_length"
INVALID_REQUEST = "invalid_request"


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    type: str
    message: str
    code: str | int | None = None
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorContext:
    """What an error message may need to mention."""

    model: str = ""
    status: int | None = None  # fault-configured status (server_error, insufficient_balance)
    message: str | None = None  # fault-configured message override
    prompt: int = 0
    completion: int = 0  # requested max tokens (0 if none)
    window: int = 0
    retry_after_s: float | None = None


SERVER_MESSAGES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                   504: "Gateway Timeout"}


def _server_status(ctx: ErrorContext) -> int:
    return ctx.status or 500


# ---- hosted OpenAI-compatible providers -------------------------------------------------------------

def _openai(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    if kind == AUTH:
        return ErrorSpec(401, "invalid_request_error", "Incorrect API key provided. You can find your API key at "
                         "https://platform.openai.com/account/api-keys.", "invalid_api_key")
    if kind == RATE_LIMIT:
        return ErrorSpec(429, "requests", f"Rate limit reached for requests. Please try again in "
                         f"{ctx.retry_after_s or 1:g}s.", "rate_limit_exceeded")
    if kind == SERVER_ERROR:
        status = _server_status(ctx)
        text = {500: "The server had an error while processing your request. Sorry about that!",
                503: "The server is overloaded or not ready yet."}.get(status, SERVER_MESSAGES[status] + ".")
        return ErrorSpec(status, "server_error", text)
    if kind == OVERLOADED:
        return ErrorSpec(503, "service_unavailable_error", "The engine is currently overloaded, please try again "
                         "later", "server_is_overloaded")
    if kind == INSUFFICIENT_BALANCE:
        return ErrorSpec(ctx.status or 429, "insufficient_quota", "You exceeded your current quota, please check "
                         "your plan and billing details.", "insufficient_quota")
    if kind == CONTEXT_LENGTH:
        return ErrorSpec(400, "invalid_request_error", f"This model's maximum context length is {ctx.window} tokens. "
                         f"However, you requested {ctx.prompt + ctx.completion} tokens ({ctx.prompt} in the "
                         f"messages, {ctx.completion} in the completion). Please reduce the length of the messages "
                         "or completion.", "context_length_exceeded", "messages")
    return None


def _deepseek(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    code = "invalid_request_error"  # DeepSeek puts this string in `code` on most errors
    table = {
        AUTH: ErrorSpec(401, "authentication_error", "Authentication Fails, Your api key is invalid", code),
        RATE_LIMIT: ErrorSpec(429, "rate_limit_error", "Rate Limit Reached", code),
        OVERLOADED: ErrorSpec(503, "server_error", "Server Overloaded", code),
        INSUFFICIENT_BALANCE: ErrorSpec(ctx.status or 402, "unknown_error", "Insufficient Balance", code),
        CONTENT_FILTER: ErrorSpec(400, "invalid_request_error", "Content Exists Risk", code),
    }
    if kind == SERVER_ERROR:
        status = _server_status(ctx)
        return ErrorSpec(status, "server_error", {500: "Server Error", 503: "Server Overloaded"}.get(
            status, SERVER_MESSAGES[status]), code)
    if kind == CONTEXT_LENGTH:
        return ErrorSpec(400, "invalid_request_error", f"This model's maximum context length is {ctx.window} tokens. "
                         f"However, you requested {ctx.prompt + ctx.completion} tokens ({ctx.prompt} in the "
                         f"messages, {ctx.completion} in the completion). Please reduce the length of the messages "
                         "or completion.", code)
    return table.get(kind)


def _qwen(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    table = {
        AUTH: ErrorSpec(401, "invalid_request_error", "Incorrect API key provided. ", "invalid_api_key"),
        RATE_LIMIT: ErrorSpec(429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.",
                              "Throttling.RateQuota"),
        OVERLOADED: ErrorSpec(503, "ServiceUnavailable", "The service is temporarily unavailable, please try again "
                              "later.", "ServiceUnavailable"),
        INSUFFICIENT_BALANCE: ErrorSpec(ctx.status or 400, "Arrearage", "Access denied, please make sure your "
                                        "account is in good standing.", "Arrearage"),
        CONTENT_FILTER: ErrorSpec(400, "data_inspection_failed", "Input data may contain inappropriate content. For "
                                  "details, see: https://help.aliyun.com/zh/model-studio/error-code#inappropriate-"
                                  "content", "data_inspection_failed"),
        CONTEXT_LENGTH: ErrorSpec(400, "invalid_request_error", "<400> InternalError.Algo.InvalidParameter: Range of "
                                  f"input length should be [1, {ctx.window}]", "invalid_parameter_error"),
    }
    if kind == SERVER_ERROR:
        return ErrorSpec(_server_status(ctx), "InternalError", "An internal error has occurred, please try again "
                         "later or contact service support.", "InternalError")
    return table.get(kind)


def _kimi(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    if kind == CONTEXT_LENGTH:
        text = "Input token length too long" if ctx.prompt > ctx.window else \
            f"Your request exceeded model token limit : {ctx.window}"
        return ErrorSpec(400, "invalid_request_error", text)
    table = {
        AUTH: ErrorSpec(401, "invalid_authentication_error", "Invalid Authentication"),
        RATE_LIMIT: ErrorSpec(429, "rate_limit_reached_error", "Your account request reached max request rate, "
                              f"please try again after {ctx.retry_after_s or 1:g} seconds"),
        OVERLOADED: ErrorSpec(429, "engine_overloaded_error", "The engine is currently overloaded, please try again "
                              "later"),
        INSUFFICIENT_BALANCE: ErrorSpec(ctx.status or 403, "exceeded_current_quota_error", "Your account balance is "
                                        "insufficient, please recharge before retrying"),
        CONTENT_FILTER: ErrorSpec(400, "content_filter", "The request was rejected because it was considered high "
                                  "risk"),
        SERVER_ERROR: ErrorSpec(_server_status(ctx), "server_error", SERVER_MESSAGES[_server_status(ctx)]),
    }
    return table.get(kind)


def _glm(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    # outer HTTP status + inner business code (a string) in {"error": {"code", "message"}}
    table = {
        AUTH: ErrorSpec(401, "", "身份验证失败。", "1000"),
        RATE_LIMIT: ErrorSpec(429, "", "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。", "1302"),
        OVERLOADED: ErrorSpec(429, "", "该模型当前访问量过大，请您稍后再试", "1312"),
        INSUFFICIENT_BALANCE: ErrorSpec(ctx.status or 429, "", "您的账户已欠费，请充值后重试。", "1113"),
        CONTENT_FILTER: ErrorSpec(400, "", "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，"
                                  "感谢您的配合。", "1301"),
        CONTEXT_LENGTH: ErrorSpec(400, "", "Prompt 超长", "1261"),
        SERVER_ERROR: ErrorSpec(_server_status(ctx), "", "服务内部错误，请稍后重试。", "500"),
        INVALID_REQUEST: ErrorSpec(400, "", "参数非法，请检查文档。", "1214"),
    }
    return table.get(kind)


def _anthropic(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    if kind == CONTEXT_LENGTH:
        if ctx.prompt > ctx.window:
            text = f"prompt is too long: {ctx.prompt} tokens > {ctx.window} maximum"
        else:
            text = (f"input length and `max_tokens` exceed context limit: {ctx.prompt} + {ctx.completion} > "
                    f"{ctx.window}, decrease input length or `max_tokens` and try again")
        return ErrorSpec(400, "invalid_request_error", text)
    if kind == SERVER_ERROR:
        status = _server_status(ctx)
        return ErrorSpec(status, "timeout_error" if status == 504 else "api_error",
                         "Request timed out" if status == 504 else "Internal server error")
    table = {
        AUTH: ErrorSpec(401, "authentication_error", "invalid x-api-key"),
        RATE_LIMIT: ErrorSpec(429, "rate_limit_error", "This request would exceed the rate limit for your "
                              "organization. Please try again later."),
        OVERLOADED: ErrorSpec(529, "overloaded_error", "Overloaded"),
        INSUFFICIENT_BALANCE: ErrorSpec(ctx.status or 402, "billing_error", "Your credit balance is too low to access "
                                        "the Anthropic API. Please go to Plans & Billing to upgrade or purchase "
                                        "credits."),
    }
    return table.get(kind)


def _gemini(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    """Google's error model: `error.code` is the HTTP status, `error.status` the canonical code name
    (https://ai.google.dev/gemini-api/docs/troubleshooting)."""
    if kind == CONTEXT_LENGTH:
        return ErrorSpec(400, "INVALID_ARGUMENT", f"The input token count ({ctx.prompt}) exceeds the maximum number "
                         f"of tokens allowed ({ctx.window}).")
    if kind == SERVER_ERROR:
        return ErrorSpec(_server_status(ctx), "INTERNAL", "An internal error has occurred. Please retry or report "
                         "in https://developers.generativeai.google/guide/troubleshooting")
    table = {
        AUTH: ErrorSpec(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
        RATE_LIMIT: ErrorSpec(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan "
                              "and billing details. For more information on this error, head to: "
                              "https://ai.google.dev/gemini-api/docs/rate-limits."),
        OVERLOADED: ErrorSpec(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        INVALID_REQUEST: ErrorSpec(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    }
    return table.get(kind)


def _azure(kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    """Azure OpenAI: OpenAI's envelope; its content filter answers 400 code content_filter with an
    innererror (https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter)."""
    if kind == CONTENT_FILTER:
        return ErrorSpec(400, None, "The response was filtered due to the prompt triggering Azure OpenAI's content "  # type: ignore[arg-type]
                         "management policy. Please modify your prompt and retry.", "content_filter", "prompt",
                         extra={"status": 400, "innererror": {"code": "ResponsibleAIPolicyViolation",
                                "content_filter_result": {"violence": {"filtered": True, "severity": "high"}}}})
    if kind == AUTH:
        return ErrorSpec(401, "", "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                         "to provide a valid key for an active subscription and use a correct regional API endpoint "
                         "for your resource.", "401")
    if kind == RATE_LIMIT:
        return ErrorSpec(429, "", "Requests to the ChatCompletions_Create Operation have exceeded token rate limit "
                         "of your current pricing tier. Please retry after 1 second.", "429")
    if kind == OVERLOADED:
        return ErrorSpec(503, "", "The service is temporarily unable to process your request. Please try again "
                         "later.", "503")
    return _openai(kind, ctx)


# ---- self-hosted servers ----------------------------------------------------------------------------

VLLM_TYPES = {400: "BadRequestError", 401: "UnauthorizedError", 402: "PaymentRequiredError", 404: "NotFoundError",
              429: "TooManyRequestsError", 500: "InternalServerError", 502: "BadGatewayError",
              503: "ServiceUnavailableError", 504: "GatewayTimeoutError"}
LLAMACPP_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                  404: "not_found_error", 500: "server_error", 501: "not_supported_error", 503: "unavailable_error"}


def _lmdeploy_type(status: int) -> str:
    return {401: "authentication_error", 404: "not_found_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")


def _selfhosted(dialect: str, kind: str, ctx: ErrorContext) -> ErrorSpec | None:
    """Context-length and overload answers of vLLM, SGLang, LMDeploy, llama.cpp and Ollama (None for a
    dialect without documented ones: it gets the generic answer in an OpenAI envelope)."""
    p, m, w = ctx.prompt, ctx.completion, ctx.window
    if kind == AUTH:  # vLLM and SGLang answer {"error": "Unauthorized"} (see envelope)
        return {"lmdeploy": ErrorSpec(401, "authentication_error", "Unauthorized.", 401),
                "llamacpp": ErrorSpec(401, "authentication_error", "Invalid API Key", 401)}.get(dialect)
    if kind == CONTEXT_LENGTH:
        return {
            "vllm": ErrorSpec(400, "BadRequestError", f"You passed {p} input tokens and requested {m} output tokens. "
                              f"However, the model's context length is only {w} tokens, resulting in a maximum input "
                              f"length of {max(0, w - m)} tokens. Please reduce the length of the input prompt. "
                              f"(parameter=input_tokens, value={p})", 400, "input_tokens"),
            "sglang": ErrorSpec(400, "BadRequestError", f"The input ({p} tokens) is longer than the model's context "
                                f"length ({w} tokens)." if p >= w else f"Requested token count exceeds the model's "
                                f"maximum context length of {w} tokens. You requested a total of {p + m} tokens: {p} "
                                f"tokens from the input messages and {m} tokens for the completion. Please reduce the "
                                "number of tokens in the input messages or the completion to fit within the limit.", 400),
            "lmdeploy": ErrorSpec(400, "invalid_request_error", f"Input length ({p}) must be smaller than the model "
                                  f"context length ({w}).", 400),
            "llamacpp": ErrorSpec(400, "exceed_context_size_error", f"request ({p} tokens) exceeds the available "
                                  f"context size ({w} tokens), try increasing it", 400,
                                  extra={"n_prompt_tokens": p, "n_ctx": w}),
            "ollama": ErrorSpec(400, "invalid_request_error", "the input length exceeds the context length"),
        }.get(dialect)
    if kind == OVERLOADED:
        return {
            "vllm": ErrorSpec(503, "ServiceUnavailableError", "The engine is overloaded.", 503),
            "sglang": ErrorSpec(503, "ServiceUnavailableError", "The server is overloaded.", 503),
            "lmdeploy": ErrorSpec(503, "server_error", "The inference engine is unavailable.", 503),
            "llamacpp": ErrorSpec(503, "unavailable_error", "Loading model", 503),
            "ollama": ErrorSpec(503, "api_error", "server busy, please try again.  maximum pending requests exceeded"),
        }.get(dialect)
    if kind == SERVER_ERROR and dialect == "sglang":
        return ErrorSpec(_server_status(ctx), "InternalServerError", "Internal server error: emulated fault",
                         _server_status(ctx))
    return None


GENERIC = {AUTH: (401, "Unauthorized"), RATE_LIMIT: (429, "Too Many Requests"),
           INSUFFICIENT_BALANCE: (402, "Payment Required (emulated: this server has no billing)"),
           CONTENT_FILTER: (400, "Content rejected (emulated)"), INVALID_REQUEST: (400, "Bad Request")}


def _generic(dialect: str, kind: str, ctx: ErrorContext) -> ErrorSpec:
    """Kinds a dialect does not document: its own envelope with a status-derived type."""
    if kind == SERVER_ERROR:
        status = _server_status(ctx)
        text = SERVER_MESSAGES[status]
    else:
        status, text = GENERIC.get(kind, (400, "Bad Request"))
        status = ctx.status or status
    if dialect in ("vllm", "sglang"):
        return ErrorSpec(status, VLLM_TYPES.get(status, "BadRequestError"), text, status)
    if dialect == "lmdeploy":
        return ErrorSpec(status, _lmdeploy_type(status), text, status)
    if dialect == "llamacpp":
        fallback = "server_error" if status >= 500 else "invalid_request_error"
        return ErrorSpec(status, LLAMACPP_TYPES.get(status, fallback), text, status)
    if dialect == "ollama":
        return ErrorSpec(status, {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error"), text)
    if dialect == "anthropic":
        return ErrorSpec(status, "invalid_request_error" if status < 500 else "api_error", text)
    return ErrorSpec(status, "invalid_request_error" if status < 500 else "server_error", text)


_HOSTED: dict[str, Callable[[str, ErrorContext], ErrorSpec | None]] = {
    "openai": _openai, "deepseek": _deepseek, "qwen": _qwen, "kimi": _kimi, "glm": _glm, "anthropic": _anthropic,
    "gemini": _gemini, "azure": _azure}


def error_spec(dialect: str, kind: str, ctx: ErrorContext) -> ErrorSpec:
    """The dialect's documented answer for `kind`, or a generic one in its envelope."""
    finder = _HOSTED.get(dialect)
    spec = finder(kind, ctx) if finder else _selfhosted(dialect, kind, ctx)
    spec = spec or _generic(dialect, kind, ctx)
    if ctx.message:
        spec = ErrorSpec(spec.status, spec.type, ctx.message, spec.code, spec.param, spec.extra)
    return spec


def envelope(dialect: str, spec: ErrorSpec, kind: str = "") -> dict[str, Any]:
    """Wrap `spec` the way the dialect does (facts: `errors.envelope` in each provider file)."""
    if kind == AUTH and dialect in ("vllm", "sglang"):
        return {"error": "Unauthorized"}  # their API-key middleware, not the OpenAI error model
    if dialect == "anthropic":
        return {"type": "error", "error": {"type": spec.type, "message": spec.message},
                "request_id": f"req_{uuid.uuid4().hex[:24]}"}
    if dialect == "kimi":
        return {"error": {"type": spec.type, "message": spec.message}}
    if dialect == "gemini":
        return {"error": {"code": spec.status, "message": spec.message, "status": spec.type}}
    if dialect == "azure":
        return {"error": {"message": spec.message, "type": spec.type or None, "param": spec.param,
                          "code": spec.code, **spec.extra}}
    if dialect == "glm":
        return {"error": {"code": str(spec.code), "message": spec.message}}
    if dialect in ("sglang", "lmdeploy"):
        return {"object": "error", "message": spec.message, "type": spec.type, "param": spec.param,
                "code": spec.status}
    if dialect == "llamacpp":
        return {"error": {"code": spec.status, "message": spec.message, "type": spec.type, **spec.extra}}
    if dialect == "vllm":
        return {"error": {"message": spec.message, "type": spec.type, "param": spec.param, "code": spec.status}}
    body: dict[str, Any] = {"error": {"message": spec.message, "type": spec.type, "param": spec.param,
                                      "code": None if dialect == "ollama" else spec.code}}
    if dialect == "qwen":
        request_id = str(uuid.uuid4())
        body.update({"id": f"chatcmpl-{request_id}", "request_id": request_id})
    return body


def error_body(dialect: str, kind: str, ctx: ErrorContext) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of the dialect's answer for `kind`."""
    spec = error_spec(dialect, kind, ctx)
    return spec.status, envelope(dialect, spec, kind)

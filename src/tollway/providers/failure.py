"""What an upstream failure means for failover, per provider dialect.

The same HTTP status means different things on different providers: a 429 is a rate limit on OpenAI but
an empty balance on GLM (code 1113); DeepSeek says 402 and Kimi 403 for the same thing. Retrying an empty
balance wastes the request's deadline, so the classification decides the next step: retry the same
deployment, move to the next one, move to a larger-context one, move to another provider, or hand the
error back to the client. The markers below are shared by every dialect (each provider's documented
messages; sources in docs/emulator.md); a dialect's own codes come from its module as an ErrorMeaning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # the rules are built in each dialect's module; only read here
    from tollway.providers.dialect import ErrorMeaning


class FailureKind(enum.Enum):
    CONNECT = "connect_error"          # could not reach the upstream: retry, then move on
    TIMEOUT = "timeout"                # connect / first-byte / between-chunk timeout: retry, then move on
    SERVER = "server_error"            # 5xx, overloaded: retry, then move on
    RATE_LIMITED = "rate_limited"      # 429 rate limit: honour Retry-After up to a cap, then move on
    OUT_OF_FUNDS = "out_of_funds"      # empty balance / quota: never retry this provider in this request
    UPSTREAM_AUTH = "upstream_auth"    # our key for the provider is wrong: move on, not the client's fault
    CONTEXT_LENGTH = "context_length"  # prompt too long: move to a deployment with a larger context window
    CONTENT_FILTER = "content_filter"  # refused by moderation: move to another provider
    CLIENT_ERROR = "client_error"      # the client's request is bad: return it, never retry
    STREAM_CUT = "stream_cut"          # upstream ended a stream early

    @property
    def retry_same(self) -> bool:
        return self in (FailureKind.CONNECT, FailureKind.TIMEOUT, FailureKind.SERVER, FailureKind.RATE_LIMITED)

    @property
    def counts_against_health(self) -> bool:
        """Whether the circuit breaker should count it: the deployment, not the request, is at fault."""
        return self not in (FailureKind.CLIENT_ERROR, FailureKind.CONTEXT_LENGTH, FailureKind.CONTENT_FILTER)


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    message: str
    status: int | None = None
    retry_after_s: float | None = None

    def describe(self) -> str:
        status = f" {self.status}" if self.status else ""
        return f"{self.kind.value}{status}: {self.message}"


_CONTEXT_MARKERS = (
    "context_length_exceeded", "maximum context length", "context length is only", "range of input length",
    "input token length too long", "exceeded model token limit", "exceed_context_size", "maximum context length",
    "must be smaller than the model context length", "prompt is too long", "exceeds the available context size",
)
_FILTER_MARKERS = ("data_inspection_failed", "datainspectionfailed", "content_filter", "content exists risk",
                   "inappropriate content", "considered high risk")
_FUNDS_MARKERS = ("insufficient_quota", "insufficient balance", "arrearage", "account is in good standing",
                  "exceeded your current quota", "allocated quota exceeded", "credit_balance", "billing_error",
                  "余额不足", "欠费")


def error_fields(body: bytes) -> tuple[str, str, str]:
    """(message, type, code) from any dialect's error envelope; tolerant of non-JSON bodies."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip(), "", ""
    if not isinstance(parsed, dict):
        return str(parsed)[:300], "", ""
    inner = parsed.get("error", parsed)
    if isinstance(inner, str):
        return inner, "", str(parsed.get("code") or "")
    if not isinstance(inner, dict):
        return str(inner)[:300], "", ""
    message = inner.get("message") or parsed.get("message") or ""
    return str(message), str(inner.get("type") or ""), str(inner.get("code") if inner.get("code") is not None else "")


def classify(meaning: ErrorMeaning, status: int, body: bytes, retry_after: str | None = None) -> Failure:
    """Turn an upstream error response into a Failure that says what to do next.

    The dialect's own business codes win (they are exact); then its own message texts and the shared
    markers; then its own status meanings; then what the HTTP status says everywhere."""
    message, err_type, code = error_fields(body)
    text = f"{message} {err_type} {code}".lower()
    short = message or err_type or code or f"HTTP {status}"
    if code and meaning.codes:
        kind = meaning.codes.get(code)
        if kind is not None:
            return Failure(kind, short, status, _retry_after(retry_after))
    for fragment, kind in meaning.messages.items():
        if fragment in text:
            return Failure(kind, short, status, _retry_after(retry_after) if kind.retry_same else None)
    if any(m in text for m in _CONTEXT_MARKERS):
        return Failure(FailureKind.CONTEXT_LENGTH, short, status)
    if any(m in text for m in _FILTER_MARKERS):
        return Failure(FailureKind.CONTENT_FILTER, short, status)
    if status == 402 or any(m in text for m in _FUNDS_MARKERS):
        return Failure(FailureKind.OUT_OF_FUNDS, short, status)
    own = meaning.statuses.get(status) if meaning.statuses else None
    if own is not None:
        return Failure(own, short, status, _retry_after(retry_after) if own.retry_same else None)
    if status == 429:
        return Failure(FailureKind.RATE_LIMITED, short, status, _retry_after(retry_after))
    if status in (401, 403):
        return Failure(FailureKind.UPSTREAM_AUTH, short, status)
    if status >= 500 or status in (408, 409):
        return Failure(FailureKind.SERVER, short, status, _retry_after(retry_after))
    return Failure(FailureKind.CLIENT_ERROR, short, status)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; HTTP-date forms are rare on LLM APIs and are treated as absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


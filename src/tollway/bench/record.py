"""The raw observation of one request, before any metric is derived from it.

Why: metrics are computed after the run from these records, so a definition can be checked (or changed)
without re-running, and a failed request keeps its place in every denominator. Times are
time.perf_counter_ns() readings: monotonic, high resolution, and from one clock for the whole run.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

RATE_LIMITED = "rate_limited"      # HTTP 429
SERVER_ERROR = "server_error"      # HTTP 5xx
CLIENT_ERROR = "client_error"      # other HTTP 4xx (bad request, auth, unknown model)
TIMEOUT = "timeout"                # no complete answer within --timeout
CONNECTION = "connection"          # refused, reset or closed before a response status arrived
STREAM_CUT = "stream_cut"          # HTTP 200, then the stream broke off before it finished
STREAM_ERROR = "stream_error"      # HTTP 200, then an error event inside the stream
BAD_RESPONSE = "bad_response"      # a response tollway could not read (not JSON, not SSE)
ERROR_KINDS = (RATE_LIMITED, SERVER_ERROR, CLIENT_ERROR, TIMEOUT, CONNECTION, STREAM_CUT, STREAM_ERROR,
               BAD_RESPONSE)


def error_kind_for_status(status: int) -> str:
    """The error kind of a non-200 HTTP status."""
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return SERVER_ERROR
    return CLIENT_ERROR


@dataclass(slots=True)
class RequestRecord:
    """What happened to one request.

    origin_ns is where latency is measured from: the scheduled send time in open-loop runs (so a client
    or server that falls behind shows up as latency), the time the request was written in closed-loop runs.
    due_ns is when the request was due: its scheduled time, or when a closed-loop worker asked to send it.
    sent_ns is when its last byte was handed to the socket (0: it never was); sent_ns - due_ns is the
    client's own send delay, which the self-check reports.
    content_ns holds the arrival time of every SSE event that carried generated text (content,
    reasoning or tool-call deltas); role-only and usage-only events are not in it.
    """

    index: int
    measured: bool
    requested_output_tokens: int | None = None
    scheduled_ns: int | None = None
    origin_ns: int = 0
    due_ns: int = 0
    sent_ns: int = 0
    response_ns: int | None = None
    end_ns: int = 0
    content_ns: array = field(default_factory=lambda: array("q"))  # int64: 8 bytes per event, not 36
    events: int = 0
    done: bool = False
    status: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    error_detail: str | None = None
    retry_after: str | None = None
    stale_connection_retries: int = 0  # resent at once: a pooled connection the server had closed

    @property
    def ok(self) -> bool:
        return self.error is None

    def fail(self, kind: str, detail: str | None = None) -> None:
        """Record the first failure only: later symptoms of the same failure add nothing."""
        if self.error is None:
            self.error = kind
            self.error_detail = detail

    def set_usage(self, usage: dict) -> None:
        """Take token counts from an OpenAI-style usage object (the last one seen wins)."""
        completion = usage.get("completion_tokens")
        if not isinstance(completion, int):
            return
        self.completion_tokens = completion
        prompt = usage.get("prompt_tokens")
        self.prompt_tokens = prompt if isinstance(prompt, int) else None
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else usage.get("cached_tokens")
        self.cached_tokens = cached if isinstance(cached, int) else None

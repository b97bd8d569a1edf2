"""What one provider wire dialect is, as one frozen record.

A dialect is how a provider speaks on the wire: how our key is sent, which path serves which endpoint,
where usage hides in a body or a stream, what its error codes mean for failover, which field carries
reasoning text, which stream events are only a preamble, which Prometheus gauges say a self-hosted
server is full. Each fact lives in the dialect's own module (tollway/providers/<name>.py) and nowhere
else; config, the upstream call, the stream relay, failover, spillover and the emulator read it from
the record. The routing table resolves the record once per deployment, so the request path reads
attributes, never a lookup by name.

The `transforms` seam is where a dialect that does not speak OpenAI Chat Completions on the wire
(Anthropic Messages, Gemini, Azure's deployment URLs) turns tollway's canonical request into its own
and its answers back. OpenAI-compatible dialects use PASS_THROUGH: their bytes are relayed untouched,
and the call path never invokes a transform for them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tollway.core.usage import Usage
from tollway.providers.failure import Failure, FailureKind, classify


class AuthStyle(enum.Enum):
    """How the provider wants our key: the header name, and the prefix before the key."""

    BEARER = ("Authorization", "Bearer ")  # OpenAI and every OpenAI-compatible server
    X_API_KEY = ("x-api-key", "")          # Anthropic Messages
    GOOG_API_KEY = ("x-goog-api-key", "")  # Google's Gemini API
    API_KEY = ("api-key", "")              # Azure OpenAI

    @property
    def header(self) -> str:
        return self.value[0]

    def headers(self, key: str) -> dict[str, str]:
        """The header(s) that carry `key`."""
        return {self.value[0]: f"{self.value[1]}{key}"}


@dataclass(frozen=True, slots=True)
class Gauges:
    """A self-hosted server's Prometheus gauges for spillover: its queue, and its KV-cache use (0 to 1).

    Names as the server's metrics documentation gives them; several KV names when a version renamed it."""

    waiting: str
    kv_usage: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ErrorMeaning:
    """What the provider's own error codes mean, beyond the markers every dialect shares (failure.py).

    codes: the business code in `error.code`, whatever the HTTP status (GLM answers 429 for an empty
    balance, code 1113). messages: lower-case text only this provider's messages carry (SGLang's "is
    longer than the model's context length"). statuses: an HTTP status that means one thing on this
    provider only (Kimi's 403 is an exhausted quota, not a bad key)."""

    codes: Mapping[str, FailureKind] = field(default_factory=dict)
    messages: Mapping[str, FailureKind] = field(default_factory=dict)
    statuses: Mapping[int, FailureKind] = field(default_factory=dict)


class StreamUsageReader(Protocol):
    """One stream's usage, fed the events that carry a non-null `usage` (one reader per stream).

    `usage` is the stream's usage once an event reported it; `reported_prompt` the prompt-only usage
    some dialects send first (Anthropic's message_start), kept apart so a stream cut before its final
    usage is estimated rather than billed as prompt-only."""

    usage: Usage | None
    reported_prompt: Usage | None

    def observe(self, chunk: Mapping) -> bool:
        """Read one parsed event; True when it carried the stream's usage (so far)."""
        ...


class UntranslatableRequest(ValueError):
    """A canonical request this dialect cannot carry (a field with no counterpart): a 400 naming the field,
    never a silently dropped one."""


class WireRefusal(Exception):
    """An answer that is, in the canonical format, a failure: a safety block with no candidates, an error
    event inside a stream. `kind` is what it means for failover (a FailureKind)."""

    def __init__(self, kind: FailureKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


class StreamTranslator(Protocol):
    """One stream's translation: each upstream SSE event in, zero or more canonical SSE events out.

    `feed` takes one complete event (without its separator) and returns bytes ready for the client
    (whole `data: ...\n\n` events, possibly none); `finish` is called once at the upstream's end and
    returns the final usage chunk and `[DONE]` only when the upstream said it had finished (a cut stream
    ends without them, so the relay reports it). Either may raise WireRefusal. `reported_prompt` is a
    prompt-only usage the stream reported first (Anthropic's message_start), for the estimate of a cut
    stream; None when there is none."""

    reported_prompt: Usage | None

    def feed(self, event: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class WireTransforms(Protocol):
    """Turning tollway's canonical request (OpenAI Chat Completions) into the dialect's own, and back.

    `passthrough` True means the dialect speaks the canonical format: the gateway relays bytes and never
    calls the methods. A translating dialect (anthropic, gemini) implements them: `request` may raise
    UntranslatableRequest, `response` WireRefusal; `max_output` is the deployment's, for dialects that
    require an output limit (Anthropic's max_tokens)."""

    passthrough: bool

    def request(self, endpoint: str, payload: bytes, max_output: int) -> bytes: ...

    def response(self, endpoint: str, body: bytes) -> bytes: ...

    def stream(self) -> StreamTranslator: ...


class PassThrough:
    """The identity transform of every OpenAI-compatible dialect."""

    passthrough = True

    def request(self, endpoint: str, payload: bytes, max_output: int) -> bytes:
        return payload

    def response(self, endpoint: str, body: bytes) -> bytes:
        return body

    def stream(self) -> StreamTranslator:
        raise NotImplementedError("a pass-through dialect's stream is relayed untouched")


PASS_THROUGH = PassThrough()


@dataclass(frozen=True, slots=True, eq=False)
class Dialect:
    """One provider wire dialect. Built in the dialect's module; listed once in registry.py. One object per
    dialect, compared and hashed by identity.

    name: the `dialect:` (or `kind:`) a provider names in the config.
    auth: how our key is sent.
    paths: endpoint ("chat", "completions", "embeddings") -> path below the provider's base URL.
    usage_from_body / usage_from_chunk: where usage lives in a non-streamed answer / one stream event.
    stream_usage: a new StreamUsageReader for one stream.
    errors: what its error codes mean (its failure classifier rules).
    is_preamble: whether one raw SSE event only announces the answer (no text yet), so a stream that
        dies after it still fails over invisibly.
    reasoning_field: the message/delta field its reasoning text rides in (None: not returned).
    gauges: Prometheus gauges spillover reads (None: no metrics to read).
    self_hosted: capacity already paid for (priced at zero, filled first by spillover).
    upstream: whether the gateway can call it today (False: known for usage and errors only).
    default_base_url: where the provider usually listens, for docs and the config's hints.
    transforms: the request/response seam (PASS_THROUGH for OpenAI-compatible dialects).
    route: the path for (endpoint, upstream model, api version) when it depends on them (Gemini's
        `models/{model}:generateContent`, Azure's deployment URLs); None: `paths[endpoint]`. A streamed
        call asks for `endpoint + ":stream"` first (Gemini streams from another method).
    version_header: the header that carries the provider's API version (Anthropic's `anthropic-version`).
    default_version: the API version used when the provider's config names none.
    forwarded_headers: lower-case client request headers passed on to the upstream (Anthropic's
        `anthropic-beta`: the client opts into a beta feature, the provider must see it).
    """

    name: str
    auth: AuthStyle
    paths: Mapping[str, str]
    usage_from_body: Callable[[Mapping], Usage | None]
    usage_from_chunk: Callable[[Mapping], Usage | None]
    stream_usage: Callable[[], StreamUsageReader]
    errors: ErrorMeaning
    is_preamble: Callable[[bytes], bool]
    reasoning_field: str | None = None
    gauges: Gauges | None = None
    self_hosted: bool = False
    upstream: bool = True
    default_base_url: str | None = None
    transforms: WireTransforms = PASS_THROUGH
    route: Callable[[str, str, str | None], str] | None = None
    version_header: str | None = None
    default_version: str | None = None
    forwarded_headers: tuple[str, ...] = ()

    def path(self, endpoint: str, model: str, version: str | None) -> str:
        """The path below the base URL for `endpoint` (or `endpoint:stream`) with this model and version."""
        if self.route is not None:
            return self.route(endpoint, model, version or self.default_version)
        return self.paths[endpoint.removesuffix(":stream")]

    def classify(self, status: int, body: bytes, retry_after: str | None = None) -> Failure:
        """What an error answer from this provider means for failover."""
        return classify(self.errors, status, body, retry_after)

    def __repr__(self) -> str:
        return f"Dialect({self.name!r})"

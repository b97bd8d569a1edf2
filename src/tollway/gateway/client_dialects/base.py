"""What a client dialect provides to the request lifecycle (gateway/handler.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from tollway.core.errors import GatewayError
from tollway.core.request import ClientRequest

if TYPE_CHECKING:
    from tollway.core.usage import Usage
    from tollway.gateway.client_dialects.native import NativeWire
    from tollway.gateway.exchange import StreamSink


class ClientDialect(Protocol):
    endpoint: str         # the ledger's endpoint: what the client called
    wire_endpoint: str    # the canonical endpoint the upstream is called for ("chat")
    counts_tokens: bool   # answers from the request alone (count_tokens): no upstream call

    @property
    def native(self) -> "NativeWire | None":
        """How upstreams of the client's own dialect are called (native.py); None: never."""

    def canonical(self, raw: bytes) -> ClientRequest:
        """The canonical request for the client's body; GatewayError(400) naming the field otherwise."""

    def answer(self, completion: bytes, usage: "Usage", model: str) -> bytes:
        """The client's answer for a chat completion (the usage as the dialect read it, exact)."""

    def stream_sink(self, sink: "StreamSink", model: str,
                    read_usage: Callable[[Mapping], "Usage | None"]) -> "TranslatingSink":
        """A sink that takes chat SSE blocks and writes the client's events to `sink`."""

    def error(self, exc: GatewayError, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of an error in the client's shape."""

    def count(self, creq: ClientRequest) -> bytes:
        """The body of a count_tokens answer."""

    async def prepare(self, creq: ClientRequest, key_id: str) -> None:
        """For a request with `creq.dialect_state` set: fill the request from the dialect's state before
        routing (the Responses API's previous_response_id); a no-op for a dialect that keeps none."""

    def answered(self, creq: ClientRequest, answer: bytes) -> None:
        """After a translated answer (with `creq.dialect_state` set): keep what the dialect keeps."""

    def streamed(self, creq: ClientRequest, translating: Any) -> None:
        """After a translated stream ended well (with `creq.dialect_state` set): keep what the dialect keeps;
        `translating` is the sink the dialect's own stream_sink returned."""


class TranslatingSink(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def end(self) -> None:
        """Close the client's stream properly if the canonical stream did not (an upstream without [DONE])."""

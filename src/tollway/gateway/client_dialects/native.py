"""The same-dialect fast path: a client's request sent to an upstream that speaks the client's own dialect.

A /v1/messages request served by an Anthropic deployment, or a /v1/responses one served by an OpenAI
deployment, needs no round trip through Chat Completions: the client's body goes upstream with the
deployment's model name (and tollway's own fields taken out), and the answer or stream comes back as the
upstream wrote it. Usage is read from the upstream's own events for the ledger, so the cost stays exact.
The decision is made per deployment, inside the failover walk: a plan that moves on to a deployment of
another dialect sends that one the canonical (translated) request, as before. Routing, holds and the
ledger row are unchanged: they work on the canonical request every client dialect still produces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from tollway.core.request import ClientRequest
from tollway.upstream import calls

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tollway.providers.dialect import StreamUsageReader
    from tollway.routing.table import RoutedDeployment
    from tollway.upstream.http_client import HttpClient


class NativeWire(Protocol):
    """What a client dialect needs to be served natively by upstreams of its own dialect."""

    dialects: frozenset[str]  # upstream dialect names that speak the client's wire
    endpoint: str             # the upstream endpoint (a key of the dialect's paths)

    def preamble(self, event: bytes) -> bool:
        """The upstream's events that come before the first token (for failover before the first event);
        an error event there raises TranslatedStreamFailure."""

    def payload(self, creq: ClientRequest, dep: "RoutedDeployment") -> bytes:
        """The client's body for this deployment: its model name, tollway's own fields taken out."""

    def answer(self, creq: ClientRequest, body: bytes) -> bytes:
        """The client's answer for the upstream's (non-streamed) answer, kept if the dialect keeps state."""

    def stream_usage(self, dep: "RoutedDeployment") -> "StreamUsageReader | None":
        """The usage reader of a relayed stream; None: the deployment dialect's own."""

    def error_event(self, message: str) -> bytes:
        """The event that ends a stream cut after its first event, in the client's shape."""

    def streamed(self, creq: ClientRequest, reader: "StreamUsageReader | None") -> None:
        """After a stream relayed to its end (keep what the dialect keeps)."""


class NativeRoutes:
    """One request's upstream calls, per deployment of its plan: natively where the deployment speaks the
    client's dialect, else the canonical request (`canonical`: its bytes per deployment) as before."""

    __slots__ = ("wire", "_creq", "_canonical", "_cache")

    def __init__(self, wire: NativeWire, creq: ClientRequest, canonical: Callable[["RoutedDeployment"], bytes]) -> None:
        self.wire = wire
        self._creq = creq
        self._canonical = canonical
        self._cache: dict[str, bytes] = {}

    def serves(self, dep: "RoutedDeployment") -> bool:
        """Whether `dep` is called natively (a name test on its resolved dialect)."""
        return dep.dialect.name in self.wire.dialects

    def call(self, upstream: "HttpClient", dep: "RoutedDeployment", deadline: float,
             headers: "Mapping[str, str]"):
        if dep.dialect.name in self.wire.dialects:
            return calls.call(upstream, dep, self.wire.endpoint, self._payload(dep), deadline,
                              client_headers=headers, native=True)
        return calls.call(upstream, dep, "chat", self._canonical(dep), deadline, client_headers=headers)

    def open_stream(self, upstream: "HttpClient", dep: "RoutedDeployment", deadline: float,
                    headers: "Mapping[str, str]"):
        if dep.dialect.name in self.wire.dialects:
            return calls.open_stream(upstream, dep, self.wire.endpoint, self._payload(dep), deadline,
                                     client_headers=headers, native_preamble=self.wire.preamble)
        return calls.open_stream(upstream, dep, "chat", self._canonical(dep), deadline, client_headers=headers)

    def _payload(self, dep: "RoutedDeployment") -> bytes:
        payload = self._cache.get(dep.name)
        if payload is None:
            payload = self._cache[dep.name] = self.wire.payload(self._creq, dep)
        return payload

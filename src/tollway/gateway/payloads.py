"""The canonical request's body as each deployment of its plan is sent it, made once per deployment.

A failover or a hedge may send the same request to several deployments; each gets the client's body with
its own upstream model name (and, streamed, usage asked for), serialised once and reused by retries.
"""

from __future__ import annotations

import orjson

from tollway.core.request import ClientRequest
from tollway.routing.table import RoutedDeployment


class UpstreamPayloads:
    """The upstream body per deployment: the client's body with the upstream model name (and usage asked for)."""

    __slots__ = ("_creq", "_cache")

    def __init__(self, creq: ClientRequest) -> None:
        self._creq = creq
        self._cache: dict[str, bytes] = {}

    def for_(self, dep: RoutedDeployment) -> bytes:
        payload = self._cache.get(dep.name)
        if payload is None:
            body = {**self._creq.body, "model": dep.upstream_model}
            if self._creq.stream:
                body["stream_options"] = {**(self._creq.body.get("stream_options") or {}), "include_usage": True}
            payload = self._cache[dep.name] = orjson.dumps(body)
        return payload

"""Which deployments have a native batch upstream, and for which line endpoints.

The native clients (OpenAI Batch, DashScope batch, Anthropic Message Batches) live in batch/native/; a
deployment none of them speaks for, or a line endpoint its provider does not batch, runs scheduled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from tollway.batch.native import client_for

if TYPE_CHECKING:
    from tollway.batch.types import NativeBatchClient
    from tollway.routing.table import RoutedDeployment

log = logging.getLogger("tollway.batch")
ClientFor = Callable[["RoutedDeployment"], "NativeBatchClient | None"]
NativeFor = Callable[["RoutedDeployment", str], bool]  # (deployment, line endpoint) -> batched natively


def serves_natively(client_for: ClientFor) -> NativeFor:
    """Whether a deployment's native client batches lines for an endpoint (the planner's question)."""
    def native(dep: "RoutedDeployment", endpoint: str) -> bool:
        client = client_for(dep)
        return client is not None and endpoint in client.endpoints

    return native


def native_clients(session: Any) -> ClientFor:
    """`dep -> its NativeBatchClient or None`, bound to an HTTP session (None: for planning only)."""
    def client(dep: "RoutedDeployment") -> "NativeBatchClient | None":
        try:
            return client_for(dep, session)
        except Exception:  # a client that cannot be built runs its lines scheduled, said once per call
            log.exception("no native batch client for deployment %s; its lines run scheduled", dep.name)
            return None

    return client

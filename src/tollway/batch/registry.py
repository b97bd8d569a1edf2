"""Which deployments have a native batch upstream: the registry `tollway.batch.native.client_for`.

The native clients (OpenAI Batch, DashScope batch, Anthropic Message Batches) live in batch/native/;
a build without them, or a deployment none of them speaks for, runs every line scheduled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tollway.batch.types import NativeBatchClient
    from tollway.routing.table import RoutedDeployment

log = logging.getLogger("tollway.batch")
ClientFor = Callable[["RoutedDeployment"], "NativeBatchClient | None"]


def native_clients(session: Any) -> ClientFor:
    """`dep -> its NativeBatchClient or None`, bound to an HTTP session (None: for planning only)."""
    try:
        from tollway.batch.native import client_for
    except ImportError:
        return lambda dep: None

    def client(dep: "RoutedDeployment") -> "NativeBatchClient | None":
        try:
            return client_for(dep, session)
        except Exception:  # a client that cannot be built runs its lines scheduled, said once per call
            log.exception("no native batch client for deployment %s; its lines run scheduled", dep.name)
            return None

    return client

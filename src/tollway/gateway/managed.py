"""Backends the gateway starts itself: the bundled llama-server for `launch: llama-server` providers.

They start in the background so the gateway answers /healthz at once; /readyz says 503 until every
managed backend is up, and requests routed to one that is still starting fail over like any unreachable
deployment would.
"""

from __future__ import annotations

import asyncio
import logging

from tollway.routing.table import RouteTable

log = logging.getLogger("tollway.managed")


class ManagedBackends:
    def __init__(self, table: RouteTable) -> None:
        self._table = table
        self._providers = sorted({d.provider for d in table.deployments.values() if d.launch == "llama-server"})
        self._servers: dict[str, object] = {}
        self._errors: dict[str, str] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._providers:
            self._task = asyncio.create_task(self._launch_all(), name="managed-backends")

    def problems(self) -> list[str]:
        """Managed backends not serving yet, with the reason if one failed to start."""
        return [f"{p}: {self._errors.get(p, 'starting llama-server')}" for p in self._providers if p not in self._servers]

    async def _launch_all(self) -> None:
        from tollway.selfhost.llamacpp import start_llama_server  # imported only when a backend is managed

        loop = asyncio.get_running_loop()
        for provider in self._providers:
            try:
                server = await loop.run_in_executor(None, lambda: start_llama_server(parallel=4))
            except Exception as exc:  # the reason is shown by /readyz and the log, the gateway keeps serving
                self._errors[provider] = f"failed to start: {exc}"
                log.error("managed backend %s failed to start: %s", provider, exc)
                continue
            self._table.set_base_url(provider, server.base_url)
            self._servers[provider] = server
            log.info("managed llama-server for provider %s at %s", provider, server.base_url)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        for server in self._servers.values():
            await asyncio.get_running_loop().run_in_executor(None, server.stop)  # type: ignore[attr-defined]

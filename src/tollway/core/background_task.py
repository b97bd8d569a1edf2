"""Background tasks: stopping one cleanly, and keeping one alive that must never end while the process runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("tollway.tasks")


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel `task` (if any) and wait for it, so its `finally` blocks have run when this returns."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


class SupervisedTask:
    """Runs `body()` as a task and starts it again whenever it ends (an exception it did not expect, a
    return, a cancel from outside) until `stop()`. A loop that dies silently is how a gateway keeps serving
    while its bookkeeping has stopped; `on_end` is told why, so the owner can say so (health, metrics)."""

    def __init__(self, name: str, body: Callable[[], Coroutine[Any, Any, None]],
                 on_end: Callable[[str], None], on_start: Callable[[], None] = lambda: None,
                 restart_after_s: float = 0.5) -> None:
        self.name = name
        self._body = body
        self._on_end = on_end
        self._on_start = on_start
        self._restart_after_s = restart_after_s
        self._task: asyncio.Task | None = None
        self._restart: asyncio.TimerHandle | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._stopping = False
        self._spawn()

    def _spawn(self) -> None:
        self._restart = None
        if self._stopping:
            return
        self._task = asyncio.get_running_loop().create_task(self._body(), name=self.name)
        self._task.add_done_callback(self._ended)
        self._on_start()

    def _ended(self, task: asyncio.Task) -> None:
        if self._stopping:
            return
        exc = None if task.cancelled() else task.exception()
        why = "it was cancelled" if task.cancelled() else type(exc).__name__ if exc else "it returned"
        log.error("background task %s ended (%s); restarting it in %.1f s", self.name, why, self._restart_after_s,
                  exc_info=exc)
        self._on_end(why)
        self._restart = asyncio.get_running_loop().call_later(self._restart_after_s, self._spawn)

    async def stop(self, cancel: bool = True) -> None:
        """No more restarts; cancel the task (or, with cancel=False, let it finish by itself) and wait."""
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        task = self._task
        if task is None or task.done():
            return
        if cancel:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("background task %s failed while stopping", self.name)

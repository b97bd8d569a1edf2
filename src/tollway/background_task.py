"""Stopping a background task: cancel it and wait until it has finished unwinding."""

from __future__ import annotations

import asyncio


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel `task` (if any) and wait for it, so its `finally` blocks have run when this returns."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

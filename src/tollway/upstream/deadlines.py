"""Many one-shot deadlines on one event-loop timer.

Why not `asyncio.timeout` per upstream call: under uvloop every `loop.call_at` starts and stops a libuv
timer, and the context manager adds task bookkeeping; measured, that is 5-15 us per call, twice per
stream (opening, then the silence timer), a fifth of what relaying a whole stream should cost. Nearly
every deadline is cancelled long before it is due (the answer came), so they go into one heap, with a
single loop timer armed for the earliest. A cancelled entry is only marked, and the heap is rebuilt
without the marked ones once they are the majority, so memory follows the calls in flight, not the
deadlines' length times the request rate.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import Callable

# how early a due entry may be taken: the loop's timers round to the millisecond
_CLOCK_SLACK_S = 0.001
_REBUILD_AFTER = 64  # cancelled entries tolerated before a rebuild is considered


class DeadlineHeap:
    """Call back at (or up to a millisecond after) a loop time, unless cancelled first."""

    def __init__(self) -> None:
        self._heap: list[list] = []  # [when, sequence, callback or None once cancelled or fired]
        self._sequence = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed_at = math.inf
        self._cancelled = 0

    def add(self, when: float, callback: Callable[[], None]) -> list:
        """Schedule `callback` for loop time `when`; the returned entry is what `cancel` takes."""
        entry = [when, next(self._sequence), callback]
        heapq.heappush(self._heap, entry)
        if when < self._armed_at or self._loop is not asyncio.get_running_loop():  # (a client used in a new loop)
            self._arm(min(when, self._heap[0][0]))
        return entry

    def cancel(self, entry: list) -> None:
        """Forget an entry (a no-op if it already fired or was cancelled)."""
        if entry[2] is None:
            return
        entry[2] = None
        self._cancelled += 1
        if self._cancelled > _REBUILD_AFTER and self._cancelled * 2 > len(self._heap):
            self._heap = [kept for kept in self._heap if kept[2] is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def __len__(self) -> int:
        """Entries held, cancelled ones not yet swept included (what memory follows)."""
        return len(self._heap)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._loop = asyncio.get_running_loop()
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle, self._armed_at = None, math.inf
        heap = self._heap
        due = asyncio.get_running_loop().time() + _CLOCK_SLACK_S
        while heap and heap[0][0] <= due:
            entry = heapq.heappop(heap)
            callback, entry[2] = entry[2], None
            if callback is None:
                self._cancelled -= 1
                continue
            try:
                callback()
            except Exception as exc:  # one bad callback must not leave the others unfired
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "deadline callback failed", "exception": exc})
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._cancelled -= 1
        if heap and heap[0][0] < self._armed_at:
            self._arm(heap[0][0])

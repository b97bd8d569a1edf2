"""Sliding sums over the last few minutes: spend, tokens, requests and errors of one series or one cell.

Alerts ask "how much in the last N seconds?" every few seconds for every series, so traffic is kept as
one bucket per second that saw any (a quiet series costs nothing), and old buckets fall off the left.

A cell is the finest grain the alerts know: one key on one route group's deployment. Every series (a
key, a route group, a deployment, a provider, all traffic) is a union of cells, so the cells' windows
tell which traffic made a series trip, and which series tripped on the same traffic (incidents.py).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

Cell = tuple[str, str, str, str]  # (key_id, route_group, deployment, provider), "" where a row has none
METRIC_INDEX = {"cost_usd": 1, "tokens": 2, "requests": 3, "errors": 4}


class WindowSums:
    __slots__ = ("_buckets", "_horizon")

    def __init__(self, horizon_s: float) -> None:
        self._buckets: deque[list] = deque()  # [second, cost, tokens, requests, errors]
        self._horizon = horizon_s

    def add(self, now: float, cost: Decimal, tokens: int, error: bool) -> None:
        self.add_sums(now, cost, tokens, 1, int(error))

    def add_sums(self, now: float, cost: Decimal, tokens: int, requests: int, errors: int) -> None:
        """Several requests that finished in the same second (one drain of the observer)."""
        second = int(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
            bucket[1] += cost
            bucket[2] += tokens
            bucket[3] += requests
            bucket[4] += errors
        else:
            buckets.append([second, cost, tokens, requests, errors])
        self.prune(now)

    def prune(self, now: float) -> None:
        oldest = now - self._horizon - 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()

    def total(self, now: float, window_s: float, metric: str) -> Decimal:
        """The sum of `metric` over the buckets of the last `window_s` seconds (whole seconds)."""
        index = METRIC_INDEX[metric]
        start = now - window_s
        total = Decimal(0)
        for bucket in reversed(self._buckets):
            if bucket[0] < start:
                break
            total += bucket[index]
        return total

    def empty(self) -> bool:
        return not self._buckets


class CellWindows:
    """The last `window_s` of traffic per cell; read only when some series tripped."""

    __slots__ = ("_cells", "_window_s")

    def __init__(self, window_s: float) -> None:
        self._cells: dict[Cell, WindowSums] = {}
        self._window_s = window_s

    def add(self, cell: Cell, now: float, cost: Decimal, tokens: int) -> None:
        window = self._cells.get(cell)
        if window is None:
            window = self._cells[cell] = WindowSums(self._window_s)
        window.add_sums(now, cost, tokens, 0, 0)

    def prune(self, now: float) -> None:
        for cell, window in list(self._cells.items()):
            window.prune(now)
            if window.empty():
                del self._cells[cell]

    def amounts(self, now: float, metric: str) -> dict[Cell, Decimal]:
        """Each cell's `metric` (cost_usd or tokens) over the window, cells without any left out."""
        amounts = {}
        for cell, window in self._cells.items():
            amount = window.total(now, self._window_s, metric)
            if amount:
                amounts[cell] = amount
        return amounts

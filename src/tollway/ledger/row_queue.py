"""The request path's half of a ledger writer: appending a row is a deque append, nothing more.

Both ledger writers (SQLite, PostgreSQL) take batches off this queue in a background task; what they do
with a batch, and with a failure, is theirs.
"""

from __future__ import annotations

from collections import deque

from tollway.ledger.schema import LedgerRow


class RowQueue:
    def __init__(self, flush_interval_s: float, batch_size: int) -> None:
        self._interval = flush_interval_s
        self._batch = batch_size
        self._queue: deque[LedgerRow] = deque()
        self.written = 0

    def append(self, row: LedgerRow) -> None:
        self._queue.append(row)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _take(self, count: int | None = None) -> list[LedgerRow]:
        """Up to `count` rows (default: one batch), oldest first."""
        count = min(self._batch if count is None else count, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

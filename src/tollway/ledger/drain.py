"""What both ledger writers (SQLite, PostgreSQL) do with their queue: a supervised loop that cannot die and
cannot be blocked by one row.

Every `flush_interval_s` the queue is written in batches, each in one transaction. A failed write is one
of two things, and each store says which of its errors are which (`OUTAGES`):
- an OUTAGE (cannot connect, connection lost, database locked, timeout): nothing is wrong with the rows,
  so they go to the spool (spool.py; kept in memory only if the spool cannot be written either) and are
  replayed, row by row under the same rule, once the database answers;
- a REFUSAL of data (a value the store will not take, whatever the exception): the batch is retried row
  by row and each row the store refuses goes to the quarantine (ledger_quarantine.py), so it never holds
  back the rows after it.
The loop runs under a SupervisedTask, so an exception nobody expected restarts it (rows it held are put
back first), and a watch task keeps LedgerHealth current, which makes a stop loud: /readyz, metrics,
alerts. `close()` writes, spools or (last resort) logs every queued row, and never raises.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from tollway.core.background_task import SupervisedTask, stop_task
from tollway.ledger.health import STALL_AFTER_S, LedgerHealth
from tollway.ledger.quarantine import QuarantineEntry, QuarantineFile, refusal_reason
from tollway.ledger.row_queue import RowQueue
from tollway.ledger.schema import LedgerRow
from tollway.ledger.spool import Spool
from tollway.ledger.store_text import row_json

log = logging.getLogger("tollway.ledger")
WATCH_EVERY_S = 1.0
UNREADABLE_SPOOL_LINE = "not a ledger row (a line torn by a kill, or written by another tollway version)"


class LedgerDrain(RowQueue):
    """The store-independent half of a ledger writer; a store supplies the methods marked `store:`."""

    OUTAGES: tuple[type[BaseException], ...] = ()

    def __init__(self, flush_interval_s: float, batch_size: int, *, ledger_path: Path, spool_path: Path,
                 where: str, stall_after_s: float = STALL_AFTER_S) -> None:
        super().__init__(flush_interval_s, batch_size)
        self.path = ledger_path  # the local ledger path: files that live beside a ledger go here
        self.spool = Spool(spool_path)
        self.quarantine_file = QuarantineFile(ledger_path.with_name(ledger_path.name + ".quarantine.jsonl"))
        self.health = LedgerHealth(where, stall_after_s)
        self._writer = SupervisedTask("ledger-writer", self._run, self._writer_ended)
        self._watch: asyncio.Task | None = None
        self._in_hand: list[LedgerRow] = []  # taken off the queue, not yet stored: put back if the loop dies
        self._flushing = False
        self._closing = False

    # -- store: what each database provides ------------------------------------------------------------
    async def _available(self) -> bool:
        """Connected (connecting if needed); False when the database cannot be reached now."""
        raise NotImplementedError

    async def _insert(self, rows: list[LedgerRow], replay: bool) -> None:
        """Store `rows` in one transaction or not at all; with `replay`, skip rows already stored."""
        raise NotImplementedError

    async def _insert_quarantine(self, entries: list[QuarantineEntry]) -> None:
        raise NotImplementedError

    async def _close_store(self) -> None:
        raise NotImplementedError

    def _database_down(self, exc: BaseException) -> None:
        """An outage was seen: remember it (the store may also drop its connection)."""
        if self.health.database_down is None:
            log.error("ledger: cannot write to %s (%s); spooling rows to %s until it is back",
                      self.health.where, refusal_reason(exc), self.spool.path)
        self.health.database_down = refusal_reason(exc)

    # -- what /readyz and /metrics read -----------------------------------------------------------------
    @property
    def unwritten(self) -> int:
        """Rows accepted but not yet in the ledger database: queued, being written, or spooled."""
        return len(self._queue) + len(self._in_hand) + len(self.spool)

    def problem(self) -> str | None:
        """Why accounting is stopped or behind (for /readyz), or None."""
        return self.health.problem(len(self._queue) + len(self._in_hand))

    # -- the loop ---------------------------------------------------------------------------------------
    def _start_tasks(self) -> None:
        self._writer.start()
        self._watch = asyncio.create_task(self._watch_loop(), name="ledger-watch")

    async def _run(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._interval)
            self._flushing = True
            try:
                await self._flush()
            finally:
                self._flushing = False

    def _writer_ended(self, why: str) -> None:
        if self._in_hand:
            self._queue.extendleft(reversed(self._in_hand))
            self._in_hand = []
        self.health.writer_down = why
        self.health.restarts += 1

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                self.health.check(len(self._queue) + len(self._in_hand))
            except Exception:
                log.exception("ledger: health check failed")

    async def _flush(self) -> None:
        if not await self._available() or (len(self.spool) and not await self._replay()):
            self._park(self._take(len(self._queue)))
            return
        while self._queue:
            rows = self._in_hand = self._take()
            stored = await self._store(rows)
            self._in_hand = []
            if stored < len(rows):
                self._park(rows[stored:] + self._take(len(self._queue)))
                return
            self.health.progressed()  # per batch: a long backlog being written is not a stall
        self.health.progressed()
        self.health.writer_down = None

    async def _store(self, rows: list[LedgerRow], replay: bool = False) -> int:
        """Write `rows`, quarantining those the store refuses. Returns how many are done (written or
        quarantined): fewer than all only when the database became unavailable; the rest are the caller's."""
        try:
            await self._insert(rows, replay)
        except self.OUTAGES as exc:
            self._database_down(exc)
            return 0
        except Exception as exc:
            if len(rows) == 1:
                await self._refuse(rows[0], exc)
                return 1
        else:
            self._written(len(rows))
            return len(rows)
        for done, row in enumerate(rows):  # one row (or more) refused the batch: find which
            try:
                await self._insert([row], replay)
            except self.OUTAGES as exc:
                self._database_down(exc)
                return done
            except Exception as exc:
                await self._refuse(row, exc)
            else:
                self._written(1)
        return len(rows)

    def _written(self, count: int) -> None:
        self.written += count
        self.health.spool_error = None  # the database takes rows again: none are stuck for want of a spool
        if self.health.database_down is not None:
            log.warning("ledger: %s is back", self.health.where)
            self.health.database_down = None

    async def _refuse(self, row: LedgerRow, exc: BaseException) -> None:
        reason = refusal_reason(exc)
        entry = QuarantineEntry.of(row, reason)
        log.error("ledger: %s refused the row of request %s (%s); it is kept in quarantine",
                  self.health.where, entry.request_id, reason)
        await self._quarantine([entry])

    async def _quarantine(self, entries: list[QuarantineEntry]) -> None:
        """Into the store's quarantine table, else the file beside the ledger, else the error log."""
        try:
            await self._insert_quarantine(entries)
        except Exception as exc:
            try:
                self.quarantine_file.append(entries)
            except Exception as file_exc:
                for entry in entries:
                    log.error("ledger: quarantined row kept nowhere else (%s; %s): %s", refusal_reason(exc),
                              refusal_reason(file_exc), entry.json_line().decode().rstrip())
        self.health.quarantined += len(entries)

    def _park(self, rows: list[LedgerRow]) -> None:
        """Rows the database cannot take now: to the spool, or back to the queue if it cannot be written."""
        if not rows:
            self.health.progressed()  # nothing is waiting
            return
        try:
            self.spool.append(rows)
        except Exception as exc:
            self._queue.extendleft(reversed(rows))
            if self.health.spool_error is None:
                log.error("ledger: cannot write the spool %s (%s); %d rows kept in memory",
                          self.spool.path, refusal_reason(exc), len(self._queue))
            self.health.spool_error = getattr(exc, "strerror", None) or type(exc).__name__
            return
        self.health.spool_error = None
        self.health.progressed()

    async def _replay(self) -> bool:
        """Write the spool, row by row under the refusal rule; False if an outage cut it short (the rows
        not yet written are then back in the spool)."""
        claimed = self.spool.claim()
        if claimed is None:
            return True
        rows, unreadable = claimed
        if unreadable:
            await self._quarantine([QuarantineEntry.unreadable_line(line, UNREADABLE_SPOOL_LINE)
                                    for line in unreadable])
        for start in range(0, len(rows), self._batch):
            chunk = rows[start:start + self._batch]
            stored = await self._store(chunk, replay=True)
            if stored < len(chunk):
                self.spool.release(rows[start + stored:])
                return False
            self.health.progressed()
        self.spool.release([])
        if rows:
            log.warning("ledger: wrote %d spooled rows to %s", len(rows), self.health.where)
        return True

    async def close(self) -> None:
        """Write everything queued (to the database, else the spool, else the log), then close; called on
        shutdown. Never raises: no row, however bad, may make shutdown fail."""
        self._closing = True
        await self._writer.stop(cancel=not self._flushing)  # a write under way finishes; a sleep is cut
        await stop_task(self._watch)
        self._queue.extendleft(reversed(self._in_hand))
        self._in_hand = []
        try:
            await self._flush()
        except Exception:
            log.exception("ledger: the final flush failed")
        left = self._take(len(self._queue))
        if left:
            self._park(left)
            for row in self._take(len(self._queue)):
                log.error("ledger: row not written anywhere at shutdown: %s", row_json(row))
        try:
            await self._close_store()
        except Exception:
            log.exception("ledger: closing the store failed")

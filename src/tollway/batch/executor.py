"""The loop that runs batches: claims one with a lease, sends its due lines, finishes it.

Every `poll_s` a replica claims the oldest active batch nobody holds (store.py: a row lease; on
PostgreSQL `FOR UPDATE SKIP LOCKED`) and runs it in a task of its own, renewing the lease. In a batch:
- a scheduled line whose `not_before` has come (on the batch clock, clock.py) is marked running, then run
  through a request's whole life by the gateway's LineService (routing, failover, residency, its own
  budget hold and settlement, one ledger row carrying the batch id and rate), at most
  `batch.concurrency` lines at once across the replica's batches, so interactive traffic keeps the rest
  of each upstream; a self-hosted deployment takes a line only while its scraped queue shows room;
- native lines are split into shares (one deployment's lines, at most the provider's lines per batch),
  each submitted once to the deployment's NativeBatchClient (its upstream batch id is stored as
  soon as the provider returns it, so a restart polls and never resubmits), polled, and their results
  recorded as rows priced at the batch rate;
- a cancel stops sending (lines not sent are `cancelled`), the deadline expires what is left (`expired`),
  and when no line is pending or running the output and error files are written and the batch ends.
Before each line is sent the batch's budget hold shrinks to what its unsent lines need (budget_hold.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

from tollway.batch.budget_hold import BatchHolds, hold_ticket
from tollway.batch.clock import batch_now
from tollway.batch.files import FileStore
from tollway.batch.jsonl import line_hold_nano, parse_lines
from tollway.batch.output import result_files
from tollway.batch.registry import ClientFor
from tollway.batch.settings import BatchSettings
from tollway.batch.store import BatchRecord, BatchStore, LineState, line_request_id
from tollway.batch.types import BatchLine, LineRun, LineService, NativeBatchClient, NativeResult
from tollway.core.money import decimal_text

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.routing.table import RoutedDeployment, RouteTable

log = logging.getLogger("tollway.batch")
CANCELLED = {"code": "batch_cancelled", "message": "The batch was cancelled before this line was sent."}
EXPIRED = {"code": "batch_expired", "message": "The batch's completion window ended before this line was sent."}
# refusals that mean "not now": the line was not run, so it is sent again later (a budget refusal is final)
RETRYABLE = ("rate_limited",)  # an upstream 429, a key or deployment rate limit (accounting/refusals.py)
RETRY_BASE_S, RETRY_MAX_S = 5.0, 60.0
# native lines wait for their upstream batch to end (its results may carry costs) this long past the window
NATIVE_GRACE_S = 3600.0
GAUGE_STALE_S = 60.0  # a self-hosted queue reading older than this says nothing about now


@dataclass(slots=True)
class _Running:
    record: BatchRecord
    lines: dict[int, BatchLine]
    holds: dict[int, int]                   # line index -> its worst case in nano-dollars
    started: int = 0                        # lines sent (or failed at sending) so far: the hold's ticket
    unsent_nano: int = 0                    # what the lines not yet started still hold
    retries: dict[int, int] = field(default_factory=dict)  # line index -> times a rate limit refused it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: set[asyncio.Task] = field(default_factory=set)


class BatchExecutor:
    def __init__(self, store: BatchStore, files: FileStore, lines: LineService, settings: BatchSettings,
                 admission: "Admission", table: Callable[[], "RouteTable"],
                 native_client_for: ClientFor | None = None) -> None:
        self.store, self.files, self.line_service, self.settings = store, files, lines, settings
        self.admission, self.table = admission, table
        self.native_client_for = native_client_for or (lambda dep: None)
        self.holds = BatchHolds(admission)
        self.owner = "replica-" + secrets.token_hex(6)
        self.slots = asyncio.Semaphore(settings.concurrency)
        self._loop: asyncio.Task | None = None
        self._batches: dict[str, asyncio.Task] = {}
        self._lines: set[asyncio.Task] = set()   # lines in flight, across batches

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._claim_forever(), name="batch-executor")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming and sending; lines in flight get `grace_s` to finish, then are cancelled (their rows
        say so, and they are not resent: see store.py), and each batch's lease is released so another
        replica (or this one restarted) resumes it at once."""
        batch_ids = list(self._batches)
        tasks = [t for t in [self._loop, *self._batches.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._lines:
            await asyncio.wait(list(self._lines), timeout=grace_s)
            for task in list(self._lines):
                task.cancel()
            await asyncio.gather(*self._lines, return_exceptions=True)
        for batch_id in batch_ids:
            try:
                await self.store.release(batch_id, self.owner)
            except Exception:
                log.exception("releasing the lease on batch %s failed; it lapses by itself", batch_id)

    async def _claim_forever(self) -> None:
        while True:
            try:
                if len(self._batches) < self.settings.max_batches:
                    batch_id = await self.store.claim(self.owner, self.settings.lease_s, list(self._batches))
                    if batch_id is not None:
                        task = asyncio.create_task(self._run_batch(batch_id), name=f"batch-{batch_id}")
                        self._batches[batch_id] = task
                        task.add_done_callback(self._forget(batch_id))
                        continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming a batch failed; trying again")
            await asyncio.sleep(self.settings.poll_s)

    def _forget(self, batch_id: str) -> Callable[[asyncio.Task], None]:
        def forget(_: asyncio.Task) -> None:
            self._batches.pop(batch_id, None)
        return forget

    # -- one batch ------------------------------------------------------------------------------------

    async def _run_batch(self, batch_id: str) -> None:
        try:
            running = await self._load(batch_id)
            if running is None:
                return
            renewed = time.monotonic()
            while True:
                if time.monotonic() - renewed > self.settings.lease_s / 3:
                    if not await self.store.renew(batch_id, self.owner, self.settings.lease_s):
                        log.warning("batch %s: another replica took it over; this one stops", batch_id)
                        return
                    renewed = time.monotonic()
                if await self._step(running):
                    return
                await asyncio.sleep(self.settings.poll_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("batch %s: running it failed; its lease lapses and it is resumed", batch_id)

    async def _load(self, batch_id: str) -> _Running | None:
        record = await self.store.get(batch_id)
        if record is None:
            return None
        content = await self.files.db.run(lambda db: self.files.content_sync(db, record.input_file_id))
        parsed = parse_lines(content, max(len(content), 1), max(record.total, 1))
        table = self.table()
        holds = {line.index: self._line_hold(line, table) for line in parsed}
        running = _Running(record, {line.index: line for line in parsed}, holds)
        states = await self.store.open_lines(batch_id)
        pending = [s for s in states if s.state == "pending"]
        running.started = record.total - len(pending)
        running.unsent_nano = sum(holds.get(s.index, 0) for s in pending)
        if record.status == "validating":
            await self.store.set_status(batch_id, "in_progress")
        await self._rehold(running, previous=running.started)
        return running

    def _line_hold(self, line: BatchLine, table: "RouteTable") -> int:
        return line_hold_nano(self.admission, table, line)

    async def _step(self, running: _Running) -> bool:
        """One round: True when the batch has ended."""
        batch_id = running.record.id
        record = await self.store.get(batch_id)
        if record is None:
            return True
        running.record = record
        now = batch_now()
        if record.status == "cancelling":
            await self._close(running, "cancelled", CANCELLED, native=False)
        elif now.timestamp() >= record.deadline:
            await self._close(running, "expired", EXPIRED, native=False)
        if now.timestamp() >= record.deadline + NATIVE_GRACE_S:  # an upstream batch that never ended
            await self._close(running, "expired", EXPIRED, native=True)
        states = await self.store.open_lines(batch_id)
        pending = [s for s in states if s.state == "pending"]
        if not states and not running.tasks:
            await self._finish(running, await self.store.lines(batch_id))
            return True
        await self._send_native(running, [s for s in pending if s.mode == "native"], now)
        for state in pending:
            if state.mode != "scheduled" or state.not_before > now.timestamp():
                continue
            if not self._has_room(state.deployment):
                continue
            if self.slots.locked():
                break
            await self.slots.acquire()
            if not await self._start(running, state):
                self.slots.release()
                continue
            task = asyncio.create_task(self._send(running, state))
            running.tasks.add(task)
            task.add_done_callback(running.tasks.discard)
            self._lines.add(task)
            task.add_done_callback(self._lines.discard)
        return False

    async def _close(self, running: _Running, state: str, error: dict, native: bool) -> None:
        """Close the unsent lines; each still gets its own ledger row, saying it was never sent."""
        for index in await self.store.close_pending(running.record.id, state, error, native):
            await self._unsent_row(running, index, state, error["message"])

    async def _unsent_row(self, running: _Running, index: int, state: str, message: str) -> None:
        record = running.record
        run = LineRun(record.id, record.key_id, running.lines[index], line_request_id(record.id, index), "standard",
                      batch_now())
        try:
            await self.line_service.record_unsent(run, state, message)
        except Exception:
            log.exception("batch %s line %d: recording it as %s failed", record.id, index, state)

    def _has_room(self, deployment: str) -> bool:
        """A self-hosted deployment takes batch lines only while its queue (scraped gauges) has room."""
        dep = self.table().deployments.get(deployment)
        if dep is None or not dep.self_hosted:
            return True
        load = dep.backend_load
        if load is None or time.monotonic() - load.at > GAUGE_STALE_S:  # no recent reading: as spillover does
            return True
        return load.waiting <= self.settings.selfhost_max_waiting

    async def _start(self, running: _Running, state: LineState) -> bool:
        """Mark the line running (committed before it is sent) and shrink the batch's hold past it."""
        async with running.lock:
            if not await self.store.start_line(running.record.id, state.index):
                return False
            previous = running.started
            running.started += 1
            running.unsent_nano -= running.holds.get(state.index, 0)
            await self._rehold(running, previous)
            return True

    async def _rehold(self, running: _Running, previous: int) -> None:
        record = running.record
        key = await self._key_record(record.key_id)
        unsent = running.unsent_nano
        await self.holds.release(key, hold_ticket(record.id, previous))
        hold_ms = int(max(record.deadline - time.time(), 60) * 1000) + 3_600_000
        if unsent and not await self.holds.hold(key, hold_ticket(record.id, running.started), unsent, hold_ms,
                                                refuse=False):
            log.info("batch %s: its unsent lines' hold no longer fits the budget; each line meets it alone",
                     record.id)

    async def _key_record(self, key_id: str):
        cache = self.admission.cache
        if not key_id or cache is None:
            return None
        return await cache.get_or_refresh(key_id)

    async def _send(self, running: _Running, state: LineState) -> None:
        record = running.record
        try:
            run = LineRun(record.id, record.key_id, running.lines[state.index], state.request_id, state.rate,  # type: ignore[arg-type]
                          batch_now())
            outcome = await self.line_service.run(run)
            if outcome.status_code == 429 and (outcome.error or {}).get("code") in RETRYABLE:
                await self._retry_later(running, state)
                return
            done = outcome.status_code == 200
            await self.store.finish_line(record.id, state.index, "done" if done else "failed", outcome.status_code,
                                         outcome.body, outcome.error, decimal_text(outcome.cost_usd))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("batch %s line %d: running it failed", record.id, state.index)
            await self.store.finish_line(record.id, state.index, "failed", 500, None,
                                         {"code": "internal_error", "message": "The gateway failed running this line."},
                                         "0")
        finally:
            self.slots.release()

    async def _retry_later(self, running: _Running, state: LineState) -> None:
        """A line a rate limit refused was not run: it goes back to pending, a little later each time (its
        refused attempt keeps its own row, at no cost); past the window it expires with the rest."""
        tries = running.retries[state.index] = running.retries.get(state.index, 0) + 1
        delay = min(RETRY_BASE_S * tries, RETRY_MAX_S)
        async with running.lock:
            running.unsent_nano += running.holds.get(state.index, 0)
            await self.store.retry_line(running.record.id, state.index, batch_now().timestamp() + delay)

    # -- native shares --------------------------------------------------------------------------------

    async def _send_native(self, running: _Running, pending: list[LineState], now: datetime) -> None:
        """Submit each share once and poll it until it ends. A share is one deployment's lines (a batch has
        one endpoint, as a provider batch does), in blocks of the provider's most lines per batch by line
        index, so a share's members are the same after a restart whatever has finished since."""
        if not pending:
            return
        record = running.record
        submitted = await self.store.submissions(record.id)
        table = self.table()
        shares: dict[str, list[LineState]] = {}
        clients: dict[str, NativeBatchClient | None] = {}
        for state in pending:
            name = state.deployment
            if name not in clients:
                dep = table.deployments.get(name)
                clients[name] = self.native_client_for(dep) if dep is not None else None
            client = clients[name]
            block = state.index // client.max_lines if client is not None else 0
            shares.setdefault(_share_key(name, block), []).append(state)
        for key, states in shares.items():
            name = states[0].deployment
            dep, client = table.deployments.get(name), clients[name]
            if dep is None or client is None:
                for state in states:  # the deployment lost its native client: nothing was sent
                    message = f"deployment {name} has no native batch upstream any more; the line was not sent"
                    await self.store.finish_line(record.id, state.index, "failed", 503, None, {
                        "code": "native_unavailable", "message": message}, "0")
                    await self._unsent_row(running, state.index, "failed", message)
                continue
            if key not in submitted:
                lines = [running.lines[s.index] for s in states]
                submission = await client.submit(lines, dep.upstream_model, record.completion_window)
                await self.store.save_submission(record.id, key, submission)
                continue
            submission, sent_state = submitted[key]
            if record.status == "cancelling" and sent_state == "submitted":
                await client.cancel(submission)  # once; lines it already ran are still recorded and billed
                await self.store.set_submission_state(record.id, key, "cancel_sent")
            upstream_state = await client.state(submission)
            if upstream_state in ("completed", "failed", "expired", "cancelled"):
                results = {r.custom_id: r for r in await client.results(submission)} if upstream_state != "failed" else {}
                for state in states:
                    await self._record_native(running, dep, state, results.get(state.custom_id), upstream_state, now)
                await self.store.set_submission_state(record.id, key, upstream_state)

    async def _record_native(self, running: _Running, dep: "RoutedDeployment", state: LineState,
                             result: NativeResult | None, upstream_state: str, now: datetime) -> None:
        record = running.record
        if not await self._start(running, state):
            return
        if result is None:
            closed = {"cancelled": ("cancelled", CANCELLED), "expired": ("expired", EXPIRED)}.get(upstream_state)
            line_state, error = closed or ("failed", {
                "code": f"batch_{upstream_state}",
                "message": f"The upstream batch at {dep.name} ended {upstream_state} without this line."})
            await self.store.finish_line(record.id, state.index, line_state, 500 if closed is None else 0, None,
                                         error, "0")
            await self._unsent_row(running, state.index, line_state, error["message"])
            return
        run = LineRun(record.id, record.key_id, running.lines[state.index], state.request_id, "batch", now, dep.name)
        outcome = await self.line_service.record_native(run, result)
        await self.store.finish_line(record.id, state.index, "done" if outcome.status_code == 200 else "failed",
                                     outcome.status_code, outcome.body, outcome.error, decimal_text(outcome.cost_usd))

    # -- the end --------------------------------------------------------------------------------------

    async def _finish(self, running: _Running, states: list[LineState]) -> None:
        record = running.record
        final = {"cancelling": "cancelled"}.get(record.status, record.status)
        if final in ("in_progress", "validating", "finalizing"):
            final = "expired" if any(s.state == "expired" for s in states) else "completed"
        await self.store.set_status(record.id, "finalizing")
        output, errors = result_files(record, states)
        output_id = await self._result_file(record, "output", output)
        error_id = await self._result_file(record, "error", errors)
        await self.store.set_status(record.id, final, output_file_id=output_id, error_file_id=error_id)
        key = await self._key_record(record.key_id)
        await self.holds.release(key, hold_ticket(record.id, running.started))
        await self.store.release(record.id, self.owner)
        total = sum((Decimal(s.cost_usd) for s in states), Decimal(0))
        log.info("batch %s %s: %d lines, cost $%s", record.id, final, len(states), decimal_text(total))

    async def _result_file(self, record: BatchRecord, kind: str, content: bytes) -> str | None:
        """The output or error file, under an id made from the batch's: a finish cut short by a restart and
        done again finds the file it already wrote instead of writing a second one."""
        if not content:
            return None
        file_id = f"file-{kind}-{record.id}"
        if not await self.files.exists(file_id):
            await self.files.put(record.key_id, "batch_output", f"{record.id}_{kind}.jsonl", content, file_id)
        return file_id


def _share_key(deployment: str, block: int) -> str:
    """The stored name of one native share: the deployment's, with its block number past the first."""
    return deployment if block == 0 else f"{deployment} #{block}"

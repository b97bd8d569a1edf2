"""Batches and their lines, durable in the ledger's database (SQLite or PostgreSQL).

A batch is created with all its lines in one transaction (or not at all). Each line has a state:
pending -> running -> done | failed, or cancelled/expired before it ran. A line is marked running (and
committed) before it is sent, and only a pending line can be marked so, so no line is ever sent twice:
a line found running when its batch is claimed again (its replica died mid-call) is failed as
`interrupted`, never resent. Its request id, `<batch id>-<index>`, is its ledger row's id everywhere.

A batch's times (created, deadline, each status change) are on the batch clock (clock.py); leases are on
the wall clock, which replicas share.

One replica runs a batch at a time: it holds a lease (owner, expiry) on the batch's row and renews it;
another replica claims a batch only when its lease has lapsed. On PostgreSQL the claim is a
`SELECT ... FOR UPDATE SKIP LOCKED` so replicas polling together never wait on or take the same row;
on SQLite the claim is one UPDATE of a lapsed row inside an immediate transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence

import orjson

from tollway.batch.clock import batch_now
from tollway.batch.db import BatchDatabase
from tollway.batch.types import BatchLine, NativeSubmission, PlannedLine

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
_BATCH_COLUMNS = ("id, key_id, shape, endpoint, input_file_id, completion_window, status, created_at, deadline, "
                  "in_progress_at, finalizing_at, completed_at, cancelling_at, cancelled_at, expired_at, failed_at, "
                  "output_file_id, error_file_id, metadata, total, worst_case_usd, expected_cost_usd")
_STAMPS = {"in_progress": "in_progress_at", "finalizing": "finalizing_at", "completed": "completed_at",
           "cancelling": "cancelling_at", "cancelled": "cancelled_at", "expired": "expired_at", "failed": "failed_at"}


@dataclass(slots=True)
class BatchRecord:
    id: str
    key_id: str
    shape: str                  # "openai" | "anthropic": the API the batch was created through
    endpoint: str
    input_file_id: str
    completion_window: str
    status: str
    created_at: int
    deadline: int
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    expired_at: int | None = None
    failed_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    total: int = 0
    worst_case_usd: str = "0"
    expected_cost_usd: str = "0"
    # from the lines
    completed: int = 0
    failed: int = 0
    cost_usd: Decimal = Decimal(0)
    states: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LineState:
    index: int
    custom_id: str
    deployment: str
    mode: str
    rate: str
    not_before: float
    state: str
    request_id: str
    status_code: int
    response: dict[str, Any] | None
    error: dict[str, Any] | None
    cost_usd: str


class BatchStore:
    def __init__(self, db: BatchDatabase) -> None:
        self.db = db

    # -- creating and reading -------------------------------------------------------------------------

    def create_sync(self, db: BatchDatabase, record: BatchRecord, lines: Sequence[BatchLine],
                    planned: Sequence[PlannedLine]) -> None:
        """The batch and every line, in one transaction."""
        by_index = {p.index: p for p in planned}
        with db.transaction():
            db.write(f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ({', '.join('?' * 22)})",
                     (record.id, record.key_id, record.shape, record.endpoint, record.input_file_id,
                      record.completion_window, record.status, record.created_at, record.deadline, None, None, None,
                      None, None, None, None, None, None, orjson.dumps(record.metadata).decode(), record.total,
                      record.worst_case_usd, record.expected_cost_usd))
            db.many("INSERT INTO batch_lines (batch_id, idx, custom_id, deployment, mode, rate, not_before, state, "
                    "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    [(record.id, line.index, line.custom_id, by_index[line.index].deployment,
                      by_index[line.index].mode, by_index[line.index].rate,
                      by_index[line.index].not_before.timestamp(), line_request_id(record.id, line.index))
                     for line in lines])

    async def get(self, batch_id: str) -> BatchRecord | None:
        return await self.db.run(lambda db: self.get_sync(db, batch_id))

    def get_sync(self, db: BatchDatabase, batch_id: str) -> BatchRecord | None:
        row = db.one(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
        if row is None:
            return None
        record = _record(row)
        for state, count, cost in db.all("SELECT state, COUNT(*), '' FROM batch_lines WHERE batch_id = ? "
                                         "GROUP BY state", (batch_id,)):
            record.states[state] = int(count)
        record.completed = record.states.get("done", 0)
        record.failed = sum(n for s, n in record.states.items() if s not in ("done", "pending", "running"))
        record.cost_usd = sum((Decimal(c) for (c,) in db.all(
            "SELECT cost_usd FROM batch_lines WHERE batch_id = ? AND cost_usd <> '0'", (batch_id,))), Decimal(0))
        return record

    async def list_for_key(self, key_id: str, after: str | None, limit: int, shape: str) -> list[BatchRecord]:
        def work(db: BatchDatabase) -> list[BatchRecord]:
            if after:
                anchor = db.one("SELECT created_at FROM batches WHERE id = ? AND key_id = ?", (after, key_id))
                if anchor is None:
                    return []
                ids = db.all("SELECT id FROM batches WHERE key_id = ? AND shape = ? AND (created_at < ? OR "
                             "(created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
                             (key_id, shape, anchor[0], anchor[0], after, limit))
            else:
                ids = db.all("SELECT id FROM batches WHERE key_id = ? AND shape = ? ORDER BY created_at DESC, "
                             "id DESC LIMIT ?", (key_id, shape, limit))
            return [r for (batch_id,) in ids if (r := self.get_sync(db, batch_id)) is not None]
        return await self.db.run(work)

    async def lines(self, batch_id: str) -> list[LineState]:
        return await self.db.run(lambda db: self.lines_sync(db, batch_id))

    async def open_lines(self, batch_id: str) -> list[LineState]:
        """The lines still pending or running (what the executor polls; finished ones are not reread)."""
        return await self.db.run(lambda db: self.lines_sync(db, batch_id, "AND state IN ('pending', 'running')"))

    def lines_sync(self, db: BatchDatabase, batch_id: str, where: str = "", params: Sequence[Any] = ()) -> list[LineState]:
        rows = db.all("SELECT idx, custom_id, deployment, mode, rate, not_before, state, request_id, status_code, "
                      f"response, error, cost_usd FROM batch_lines WHERE batch_id = ? {where} ORDER BY idx",
                      (batch_id, *params))
        return [LineState(r[0], r[1], r[2], r[3], r[4], float(r[5]), r[6], r[7], r[8],
                          orjson.loads(r[9]) if r[9] else None, orjson.loads(r[10]) if r[10] else None, r[11])
                for r in rows]

    async def outstanding_worst_case(self, key_id: str) -> Decimal:
        """What the key's other unfinished batches still hold (their worst case less what their finished
        lines settled is not tracked per line: the whole worst case stays held until a batch ends)."""
        rows = await self.db.run(lambda db: db.all(
            f"SELECT worst_case_usd FROM batches WHERE key_id = ? AND status IN ({', '.join('?' * len(ACTIVE))})",
            (key_id, *ACTIVE)))
        return sum((Decimal(r[0]) for r in rows), Decimal(0))

    # -- the lease ------------------------------------------------------------------------------------

    async def claim(self, owner: str, lease_s: float, exclude: Sequence[str]) -> str | None:
        """Take the oldest active batch no live replica holds; its id, or None."""
        return await self.db.run(lambda db: self._claim_sync(db, owner, lease_s, list(exclude)))

    def _claim_sync(self, db: BatchDatabase, owner: str, lease_s: float, exclude: list[str]) -> str | None:
        now = time.time()
        skip = f" AND id NOT IN ({', '.join('?' * len(exclude))})" if exclude else ""
        active = ", ".join("?" * len(ACTIVE))
        with db.transaction():
            lock = " FOR UPDATE SKIP LOCKED" if db.postgres else ""
            row = db.one(f"SELECT id FROM batches WHERE status IN ({active}) AND lease_until < ?{skip} "
                         f"ORDER BY created_at, id LIMIT 1{lock}", (*ACTIVE, now, *exclude))
            if row is None:
                return None
            changed = db.write("UPDATE batches SET lease_owner = ?, lease_until = ? WHERE id = ? AND lease_until < ?",
                               (owner, now + lease_s, row[0], now))
            if changed != 1:
                return None
            # a line left running by a replica that lost this batch was (maybe) sent: never send it again
            db.write("UPDATE batch_lines SET state = 'failed', status_code = 500, error = ? WHERE batch_id = ? "
                     "AND state = 'running'", (orjson.dumps(INTERRUPTED).decode(), row[0]))
        return row[0]

    async def renew(self, batch_id: str, owner: str, lease_s: float) -> bool:
        """Extend our lease; False when another replica has taken the batch (stop running it)."""
        return await self.db.run(lambda db: db.write(
            "UPDATE batches SET lease_until = ? WHERE id = ? AND lease_owner = ?",
            (time.time() + lease_s, batch_id, owner)) == 1)

    async def release(self, batch_id: str, owner: str) -> None:
        await self.db.run(lambda db: db.write(
            "UPDATE batches SET lease_until = 0 WHERE id = ? AND lease_owner = ?", (batch_id, owner)))

    # -- lines ----------------------------------------------------------------------------------------

    async def start_line(self, batch_id: str, index: int) -> bool:
        """pending -> running, committed before the line is sent; False if it was not pending."""
        return await self.db.run(lambda db: db.write(
            "UPDATE batch_lines SET state = 'running' WHERE batch_id = ? AND idx = ? AND state = 'pending'",
            (batch_id, index)) == 1)

    async def finish_line(self, batch_id: str, index: int, state: str, status_code: int,
                          response: dict | None, error: dict | None, cost_usd: str) -> None:
        await self.db.run(lambda db: db.write(
            "UPDATE batch_lines SET state = ?, status_code = ?, response = ?, error = ?, cost_usd = ? "
            "WHERE batch_id = ? AND idx = ?",
            (state, status_code, None if response is None else orjson.dumps(response).decode(),
             None if error is None else orjson.dumps(error).decode(), cost_usd, batch_id, index)))

    async def retry_line(self, batch_id: str, index: int, not_before: float) -> None:
        """running -> pending again, not before `not_before` (a line a rate limit refused: it never ran)."""
        await self.db.run(lambda db: db.write(
            "UPDATE batch_lines SET state = 'pending', not_before = ? WHERE batch_id = ? AND idx = ? AND "
            "state = 'running'", (not_before, batch_id, index)))

    async def close_pending(self, batch_id: str, state: str, error: dict, native: bool = False) -> list[int]:
        """Every scheduled (or, with `native`, native) line not yet sent becomes `state` (cancelled, expired)
        with `error`; the indexes closed. Native lines are closed from their upstream batch's results."""
        mode = "native" if native else "scheduled"

        def close(db: BatchDatabase) -> list[int]:
            with db.transaction():
                found = [r[0] for r in db.all("SELECT idx FROM batch_lines WHERE batch_id = ? AND state = 'pending' "
                                              "AND mode = ? ORDER BY idx", (batch_id, mode))]
                db.write("UPDATE batch_lines SET state = ?, error = ? WHERE batch_id = ? AND state = 'pending' "
                         "AND mode = ?", (state, orjson.dumps(error).decode(), batch_id, mode))
            return found
        return await self.db.run(close)

    async def set_status(self, batch_id: str, status: str, at: int | None = None, **files: str | None) -> None:
        stamp = _STAMPS.get(status)
        sets: list[str] = ["status = ?"]
        params: list[Any] = [status]
        if stamp:
            sets.append(f"{stamp} = COALESCE({stamp}, ?)")
            params.append(at if at is not None else int(batch_now().timestamp()))
        for name, value in files.items():
            assert name in ("output_file_id", "error_file_id")
            sets.append(f"{name} = ?")
            params.append(value)
        await self.db.run(lambda db: db.write(f"UPDATE batches SET {', '.join(sets)} WHERE id = ?",
                                              (*params, batch_id)))

    async def request_cancel(self, batch_id: str) -> None:
        await self.db.run(lambda db: db.write(
            f"UPDATE batches SET status = 'cancelling', cancelling_at = ? WHERE id = ? AND status IN "
            f"({', '.join('?' * len(ACTIVE))})", (int(batch_now().timestamp()), batch_id, *ACTIVE)))

    # -- native shares --------------------------------------------------------------------------------

    async def save_submission(self, batch_id: str, deployment: str, submission: NativeSubmission) -> None:
        await self.db.run(lambda db: db.write(
            "INSERT INTO batch_native (batch_id, deployment, upstream_batch_id, upstream_file_id, extra) "
            "VALUES (?, ?, ?, ?, ?)", (batch_id, deployment, submission.upstream_batch_id,
                                       submission.upstream_file_id, orjson.dumps(submission.extra).decode())))

    async def submissions(self, batch_id: str) -> dict[str, tuple[NativeSubmission, str]]:
        rows = await self.db.run(lambda db: db.all(
            "SELECT deployment, upstream_batch_id, upstream_file_id, extra, state FROM batch_native "
            "WHERE batch_id = ?", (batch_id,)))
        return {r[0]: (NativeSubmission(r[1], r[2], orjson.loads(r[3])), r[4]) for r in rows}

    async def set_submission_state(self, batch_id: str, deployment: str, state: str) -> None:
        await self.db.run(lambda db: db.write("UPDATE batch_native SET state = ? WHERE batch_id = ? AND "
                                              "deployment = ?", (state, batch_id, deployment)))


INTERRUPTED = {"code": "interrupted", "message": "The gateway running this batch stopped while this line was in "
               "flight; it is not sent again, so it is never run twice. Send it in a new batch if it has no result."}


def line_request_id(batch_id: str, index: int) -> str:
    return f"{batch_id}-{index}"


def _record(row: tuple) -> BatchRecord:
    values = list(row)
    values[18] = orjson.loads(values[18]) if values[18] else {}
    return BatchRecord(*values)

"""Rows a ledger store refused, kept with the reason instead of being dropped or blocking the rows after them.

A refusal is about one row's data (a value the database will not take), not about the database being
unavailable: retrying will not help, and holding the row back would hold back every row behind it. Each
refused row is kept whole, as escaped JSON (store_text.py), in the `quarantine` table of the ledger's own
database; if that insert fails too, in `<ledger path>.quarantine.jsonl` beside the ledger; if even that
file cannot be written, in the error log. Operators read it with `SELECT * FROM quarantine` or from the
file (docs/budgets.md), fix what the reason names, and insert the row by hand if it should count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tollway.ledger.store_text import row_json, store_json, store_text

REASON_CHARS = 500
QUARANTINE_COLUMNS = ("quarantined_at", "request_id", "request_ts", "reason", "row_json")
# SQLite; PostgreSQL's table is migration 005 (ledger/sql/postgres/).
CREATE_QUARANTINE_SQL = """
CREATE TABLE IF NOT EXISTS quarantine (
  quarantined_at TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  request_ts TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL,
  row_json TEXT NOT NULL
);
"""


def refusal_reason(exc: BaseException) -> str:
    """The store's own words, one line, bounded: what an operator needs to fix the row."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return store_text(text[:REASON_CHARS])


@dataclass(slots=True, frozen=True)
class QuarantineEntry:
    quarantined_at: str
    request_id: str
    request_ts: str
    reason: str
    row_json: str

    @classmethod
    def of(cls, row: Any, reason: str) -> QuarantineEntry:
        return cls(datetime.now(UTC).isoformat(), store_text(str(getattr(row, "id", ""))),
                   store_text(str(getattr(row, "ts", ""))), reason, row_json(row))

    @classmethod
    def unreadable_line(cls, line: str, reason: str) -> QuarantineEntry:
        """A spool line that is not a row (torn by a kill, or written by another version)."""
        return cls(datetime.now(UTC).isoformat(), "", "", reason, store_json({"unreadable_spool_line": line}))

    def values(self) -> tuple[str, ...]:
        return (self.quarantined_at, self.request_id, self.request_ts, self.reason, self.row_json)

    def json_line(self) -> bytes:
        """One line of the quarantine file: the entry's fields, and the row as the JSON object it is."""
        head = orjson.dumps({"quarantined_at": self.quarantined_at, "request_id": self.request_id,
                             "request_ts": self.request_ts, "reason": self.reason})
        return head[:-1] + b',"row":' + self.row_json.encode() + b"}\n"


class QuarantineFile:
    """The fallback beside the ledger: JSON lines, fsync'd (a quarantined row is the only copy)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entries: list[QuarantineEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as out:
            out.write(b"".join(entry.json_line() for entry in entries))
            out.flush()
            os.fsync(out.fileno())

"""Reading ledger rows back as LedgerRow objects, for start-up history, `tollway report` and `reconcile`.

The observer, the report and the reconciliation all reason about LedgerRow, whether the row came from a
live request or from the SQLite file, so every consumer has one code path. The file is opened read-only
(a wrong path never creates an empty ledger) and only columns this version knows are read, so a ledger
written by an older or newer tollway still loads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import orjson

from tollway.ledger.schema import LedgerRow

_ROW_FIELDS = {f.name for f in fields(LedgerRow)}


class LedgerReadError(Exception):
    """The ledger file is missing or unreadable; the message names the file."""


def read_rows(path: Path, since: datetime | None = None, until: datetime | None = None) -> Iterator[LedgerRow]:
    """Rows with since <= ts < until, oldest first. Timestamps compare as ISO-8601 UTC strings."""
    if not path.is_file():
        raise LedgerReadError(f"no ledger at {path}: start `tollway serve` or pass --ledger")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LedgerReadError(f"{path}: cannot open the ledger: {exc}") from None
    try:
        columns = _known_columns(conn, path)
        where, params = _window(since, until)
        cursor = conn.execute(f"SELECT {', '.join(columns)} FROM requests {where} ORDER BY ts", params)
        for values in cursor:
            record = dict(zip(columns, values))
            if "attempts" in record:
                record["attempts"] = orjson.loads(record["attempts"] or "[]")
            yield LedgerRow(**record)
    except sqlite3.Error as exc:
        raise LedgerReadError(f"{path}: cannot read the ledger: {exc}") from None
    finally:
        conn.close()


def _known_columns(conn: sqlite3.Connection, path: Path) -> list[str]:
    present = [row[1] for row in conn.execute("PRAGMA table_info(requests)")]
    if not present:
        raise LedgerReadError(f"{path}: not a tollway ledger (no `requests` table)")
    return [name for name in present if name in _ROW_FIELDS]


def _window(since: datetime | None, until: datetime | None) -> tuple[str, tuple[str, ...]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since.isoformat())
    if until is not None:
        clauses.append("ts < ?")
        params.append(until.isoformat())
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)

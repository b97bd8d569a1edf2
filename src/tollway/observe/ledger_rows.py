"""Reading ledger rows back as LedgerRow objects, for start-up history, `tollway report` and `reconcile`.

The observer, the report and the reconciliation all reason about LedgerRow, whether the row came from a
live request or from the ledger, so every consumer has one code path. The reading itself is the ledger's
read side (ledger/reader.py), SQLite or PostgreSQL; this module keeps the file-path form for callers that
hold a SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from tollway.ledger.reader import LedgerReadError, SqliteLedgerReader
from tollway.ledger.schema import LedgerRow

__all__ = ["LedgerReadError", "read_rows"]


def read_rows(path: Path, since: datetime | None = None, until: datetime | None = None) -> Iterator[LedgerRow]:
    """Rows of the SQLite ledger at `path` with since <= ts < until, oldest first."""
    return SqliteLedgerReader(path).rows(since, until)

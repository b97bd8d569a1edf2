"""A local file of ledger rows the database could not take yet: nothing is lost while PostgreSQL is down.

Rows are appended as JSON lines and fsync'd, so they survive the gateway being killed too. When the
database answers again the writer replays the file (inserts ignore rows already there, so a replay cut
short and repeated does no harm) and only then empties it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import orjson

from tollway.accounting.ledger_schema import LedgerRow


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, rows: list[LedgerRow]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(dataclasses.asdict(row)) + b"\n" for row in rows)
        with open(self.path, "ab") as spool:
            spool.write(data)
            spool.flush()
            os.fsync(spool.fileno())

    def read(self) -> list[LedgerRow]:
        """Every complete row in the file; a torn last line (killed mid-write) is skipped."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_bytes().splitlines():
            try:
                rows.append(LedgerRow(**orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError):
                continue
        return rows

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        return sum(1 for line in self.path.read_bytes().splitlines() if line.strip())

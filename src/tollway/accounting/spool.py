"""A local file of ledger rows the database could not take yet: nothing is lost while it is unavailable.

Rows are appended as JSON lines (text escaped as every store needs, store_text.py) and fsync'd, so they
survive the gateway being killed too. When the database answers again the writer replays the file row by
row: a row the database refuses goes to the quarantine, and a replay cut short by another outage leaves
exactly the rows not yet written (`replace`), so the next start never fails on a bad spooled row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tollway.accounting.ledger_schema import LedgerRow
from tollway.accounting.store_text import row_json


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = self._count_lines()  # kept in memory: metrics and every flush ask, the file is read once

    def append(self, rows: list[LedgerRow]) -> None:
        """Add `rows`, durably; raises OSError when the file cannot be written (the caller keeps them)."""
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(row_json(row) + "\n" for row in rows).encode()
        with open(self.path, "ab") as spool:
            spool.write(data)
            spool.flush()
            os.fsync(spool.fileno())
        self.count += len(rows)

    def read(self) -> tuple[list[LedgerRow], list[str]]:
        """Every readable row, and the lines that are not rows (a torn last line of a killed process, a
        row of another tollway version): those are quarantined by the writer, never dropped silently."""
        if not self.path.exists():
            return [], []
        rows, unreadable = [], []
        for line in self.path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:  # the stdlib parser: rare path, and no 64-bit limit that would turn a big integer into a float
                rows.append(LedgerRow(**json.loads(line)))
            except (ValueError, TypeError):
                unreadable.append(line.decode("utf-8", "backslashreplace"))
        return rows, unreadable

    def replace(self, rows: list[LedgerRow]) -> None:
        """Keep only `rows` (a replay's remainder), atomically: a crash leaves the old file or the new."""
        if not rows:
            self.clear()
            return
        partial = self.path.with_name(self.path.name + ".partial")
        with open(partial, "wb") as spool:
            spool.write("".join(row_json(row) + "\n" for row in rows).encode())
            spool.flush()
            os.fsync(spool.fileno())
        os.replace(partial, self.path)
        self.count = len(rows)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def _count_lines(self) -> int:
        try:
            return sum(1 for line in self.path.read_bytes().splitlines() if line.strip())
        except OSError:  # absent, or unreadable: the writer says so when it first has to use it
            return 0

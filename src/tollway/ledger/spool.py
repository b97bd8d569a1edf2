"""A local file of ledger rows the database could not take yet: nothing is lost while it is unavailable.

Rows are appended as JSON lines (text escaped as every store needs, store_text.py) and fsync'd, so they
survive the gateway being killed too. Several processes may share one spool (`--workers N` share the
ledger path), so a replay first CLAIMS the file: it renames it to a name of its own and reads it under
an exclusive lock, while appenders lock the file they opened and re-open if it was claimed meanwhile.
No append can land in a file after its claimer has read it, and rows spooled during a replay go to a
new file. The claimed file is deleted only when its rows are written, quarantined or spooled again, so a
replay cut short by a kill is adopted by the next replay (claims of processes no longer alive).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from tollway.ledger.schema import LedgerRow
from tollway.ledger.store_text import row_json


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = _count_lines(path)  # kept in memory: metrics and every flush ask, the file is read once
        self._claimed: Path | None = None

    def append(self, rows: list[LedgerRow]) -> None:
        """Add `rows`, durably; raises OSError when the file cannot be written (the caller keeps them)."""
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(row_json(row) + "\n" for row in rows).encode()
        while True:
            with open(self.path, "ab") as spool:
                fcntl.flock(spool, fcntl.LOCK_EX)
                if not _still_at(spool, self.path):
                    continue  # claimed by a replay between our open and our lock: append to the new file
                spool.write(data)
                spool.flush()
                os.fsync(spool.fileno())
                break
        self.count += len(rows)

    def claim(self) -> tuple[list[LedgerRow], list[str]] | None:
        """Take the spool (or a claim a dead process left) for replay: its rows and the lines that are not
        rows (a torn last line, a row of another tollway version). None when there is nothing to replay."""
        self.count = 0
        claimed = self._orphan() or self._rename()
        if claimed is None:
            return None
        self._claimed = claimed
        with open(claimed, "rb") as spool:
            fcntl.flock(spool, fcntl.LOCK_EX)  # waits for an append that opened it before the rename
            data = spool.read()
        rows, unreadable = [], []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:  # the stdlib parser: rare path, and no 64-bit limit that would turn a big integer into a float
                rows.append(LedgerRow(**json.loads(line)))
            except (ValueError, TypeError):
                unreadable.append(line.decode("utf-8", "backslashreplace"))
        return rows, unreadable

    def release(self, remaining: list[LedgerRow]) -> None:
        """End a claim: `remaining` (rows a cut-short replay did not write) go back to the spool, then the
        claimed file goes. Raises OSError if they cannot; the claimed file then stays to be adopted."""
        self.append(remaining)
        if self._claimed is not None:
            self._claimed.unlink(missing_ok=True)
            self._claimed = None

    def __len__(self) -> int:
        return self.count

    def _rename(self) -> Path | None:
        claimed = self.path.with_name(f"{self.path.name}.{os.getpid()}.replay")
        if not self.path.is_file():
            return None
        try:
            os.rename(self.path, claimed)
        except FileNotFoundError:
            return None
        return claimed

    def _orphan(self) -> Path | None:
        """A claim whose process is gone (or this process's own, left by a failed release)."""
        for candidate in sorted(self.path.parent.glob(f"{self.path.name}.*.replay")):
            pid = candidate.name[len(self.path.name) + 1:-len(".replay")]
            if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
                mine = self.path.with_name(f"{self.path.name}.{os.getpid()}.replay")
                try:
                    os.rename(candidate, mine)
                except FileNotFoundError:
                    continue  # another process adopted it first
                return mine
        return None


def _still_at(handle, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _count_lines(path: Path) -> int:
    """Rows in the spool and in claims a killed replay left (replayed too)."""
    count = 0
    for spool in (path, *path.parent.glob(f"{path.name}.*.replay")):
        try:
            count += sum(1 for line in spool.read_bytes().splitlines() if line.strip())
        except OSError:  # absent, or unreadable: the writer says so when it first has to use it
            pass
    return count

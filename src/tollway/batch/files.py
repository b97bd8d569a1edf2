"""The file store behind /v1/files: batch input files, and the output and error files batches write.

A file's record (id, owner key, purpose, name, size, time) is a row of `batch_files` in the ledger's
database; its bytes sit in that row too, or, with `batch.files_dir`, in a file named by its id in that
directory (for large batches on a small database). A file belongs to the key that uploaded it (or, for
output files, the key that created the batch): another key is told it does not exist.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from tollway.batch.db import BatchDatabase
from tollway.core.errors import GatewayError

PURPOSES = ("batch", "batch_output")  # uploaded input files; the output and error files batches write


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    key_id: str
    purpose: str
    filename: str
    bytes: int
    created_at: int

    def as_openai(self) -> dict:
        """The OpenAI file object."""
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def file_not_found(file_id: str) -> GatewayError:
    return GatewayError(404, f"No file found with id '{file_id}'.", "invalid_request_error", "file_not_found",
                        "file_id")


class FileStore:
    def __init__(self, db: BatchDatabase, files_dir: Path | None) -> None:
        self.db = db
        self.files_dir = files_dir

    async def put(self, key_id: str, purpose: str, filename: str, content: bytes,
                  file_id: str | None = None) -> StoredFile:
        record = StoredFile(file_id or new_file_id(), key_id, purpose, filename, len(content), int(time.time()))
        await self.db.run(lambda db: self.put_sync(db, record, content))
        return record

    def put_sync(self, db: BatchDatabase, record: StoredFile, content: bytes) -> None:
        """Write the bytes first (a directory file is renamed into place), then the record: a record never
        points at missing bytes."""
        path = ""
        if self.files_dir is not None:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            target = self.files_dir / record.id
            partial = target.with_suffix(".partial")
            partial.write_bytes(content)
            os.replace(partial, target)
            path = str(target)
        db.write("INSERT INTO batch_files (id, key_id, purpose, filename, bytes, created_at, content, path) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (record.id, record.key_id, record.purpose, record.filename, record.bytes, record.created_at,
                  None if path else content, path))

    async def exists(self, file_id: str) -> bool:
        return await self.db.run(lambda db: db.one("SELECT 1 FROM batch_files WHERE id = ?", (file_id,))) is not None

    async def get(self, file_id: str, key_id: str) -> StoredFile:
        """The file's record; GatewayError 404 when it does not exist or belongs to another key."""
        row = await self.db.run(lambda db: db.one(
            "SELECT id, key_id, purpose, filename, bytes, created_at FROM batch_files WHERE id = ?", (file_id,)))
        if row is None or row[1] != key_id:
            raise file_not_found(file_id)
        return StoredFile(*row)

    async def content(self, file_id: str, key_id: str) -> bytes:
        await self.get(file_id, key_id)
        return await self.db.run(lambda db: self.content_sync(db, file_id))

    @staticmethod
    def content_sync(db: BatchDatabase, file_id: str) -> bytes:
        row = db.one("SELECT content, path FROM batch_files WHERE id = ?", (file_id,))
        if row is None:
            raise file_not_found(file_id)
        content, path = row
        if path:
            return Path(path).read_bytes()
        return bytes(content)

"""The file store: in the ledger's database, or with batch.files_dir in a directory; a file is its key's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tollway.batch.db import BatchDatabase
from tollway.batch.files import FileStore
from tollway.core.errors import GatewayError


@pytest.mark.parametrize("in_directory", [False, True])
def test_a_file_is_kept_and_read_back_by_its_own_key_only(tmp_path: Path, in_directory: bool):
    async def scenario() -> None:
        db = BatchDatabase(tmp_path / "ledger.db", None)
        files = FileStore(db, tmp_path / "files" if in_directory else None)
        stored = await files.put("key-a", "batch", "in.jsonl", b'{"custom_id": "a"}\n')
        assert (await files.get(stored.id, "key-a")).as_openai()["bytes"] == 19
        assert await files.content(stored.id, "key-a") == b'{"custom_id": "a"}\n'
        with pytest.raises(GatewayError) as other:
            await files.content(stored.id, "key-b")
        assert (other.value.status, other.value.code) == (404, "file_not_found")
        on_disk = tmp_path / "files" / stored.id
        assert on_disk.exists() is in_directory
        in_row = await db.run(lambda d: d.one("SELECT content FROM batch_files WHERE id = ?", (stored.id,)))
        assert (in_row[0] is None) is in_directory
        db.close()

    asyncio.run(scenario())

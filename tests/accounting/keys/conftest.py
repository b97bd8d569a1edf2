"""The key stores, each as a gateway opens it: SQLite in a fresh file, and a real PostgreSQL."""

from __future__ import annotations

import pytest

from tollway.accounting.keys.store import open_key_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = open_key_store(None, tmp_path / "ledger.db")
    else:
        store = open_key_store(request.getfixturevalue("postgres_url"), tmp_path / "unused.db")
    yield store
    store.close()

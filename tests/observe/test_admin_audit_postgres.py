"""The audit log on a PostgreSQL ledger: two replicas write their admin actions into one table (migration
012), and `tollway audit admin --database-url` reads both."""

from __future__ import annotations

import subprocess
from contextlib import ExitStack

import orjson
import pytest

from tests.accounting.support import ADMIN_KEY, Admin, budget_config, start_gateways
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow


def test_replicas_share_one_audit_log(emulator, postgres_url, tmp_path):
    with ExitStack() as stack:
        first, second = start_gateways(stack, tmp_path, budget_config(emulator), ["first", "second"],
                                       extra_args=("--database-url", postgres_url))
        _check(first, second, postgres_url)


def _check(first, second, postgres_url: str) -> None:
    key_id, secret = Admin(first).create_key(name="from-first", team="search")
    Admin(second).revoke(key_id)
    listed = subprocess.run([*TOLLWAY, "audit", "admin", "--database-url", postgres_url, "--json"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    entries = orjson.loads(listed.stdout)
    assert [(e["action"], e["target"], e["actor_kind"]) for e in entries] == [
        ("key.revoked", key_id, "admin_key"), ("key.created", key_id, "admin_key")]
    assert entries[0]["diff"]["revoked_at"]["from"] is None and entries[0]["diff"]["revoked_at"]["to"]
    assert secret not in listed.stdout and ADMIN_KEY not in listed.stdout
    assert entries[0]["actor"] == entries[1]["actor"] and entries[0]["actor"].startswith("admin-key:")

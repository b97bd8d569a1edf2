"""A key's life: an imported secret, an expiry, a rotation with a grace period, through a real gateway and
`tollway keys`; and the bad inputs each get a clear refusal."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from tests.accounting.support import ENV, budget_config, wait_for
from tests.gateway.support import chat
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow
IMPORTED = "tw_migrated1_" + "ab12" * 12


def keys_cli(gw, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "keys", "--ledger", str(gw.ledger), *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def ask(gw, secret: str) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json=chat(), timeout=30,
                      headers={"authorization": f"Bearer {secret}"})


def code_of(reply: httpx.Response) -> str:
    return "ok" if reply.status_code == 200 else reply.json()["error"]["code"]


def test_an_imported_secret_works_and_bad_imports_are_refused(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    made = keys_cli(gw, "create", "--name", "moved", "--secret-env", "OLD_SECRET", "--json",
                    env={"OLD_SECRET": IMPORTED})
    assert made.returncode == 0, made.stderr
    record = json.loads(made.stdout)
    assert record["id"] == "migrated1" and record["secret"] == IMPORTED
    assert "ab12" * 12 not in keys_cli(gw, "list", "--json").stdout, "only its hash is stored"
    wait_for(lambda: code_of(ask(gw, IMPORTED)) == "ok", timeout=5)
    again = keys_cli(gw, "create", "--name", "twice", "--secret-env", "OLD_SECRET", env={"OLD_SECRET": IMPORTED})
    assert again.returncode == 1 and "key id migrated1 (from the secret in $OLD_SECRET) is already in use" in again.stderr
    for bad in ("sk-live-1234", "tw_migrated2_" + "ab" * 8, "tw_UPPER_" + "ab" * 16, "tw_ok12_" + "zz" * 16):
        refused = keys_cli(gw, "create", "--name", "bad", "--secret-env", "OLD_SECRET", env={"OLD_SECRET": bad})
        assert refused.returncode == 2 and "must look like tw_<id>_<hex>" in refused.stderr, (bad, refused.stderr)
        assert bad not in refused.stderr, "a refused secret is not echoed"
    unset = keys_cli(gw, "create", "--name", "bad", "--secret-env", "NO_SUCH_VAR_HERE")
    assert unset.returncode == 2 and "$NO_SUCH_VAR_HERE is not set or empty" in unset.stderr


def test_an_expired_key_gets_key_expired(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    past = json.loads(keys_cli(gw, "create", "--name", "old", "--expires-at", "2020-01-01T00:00:00Z", "--json").stdout)
    live = json.loads(keys_cli(gw, "create", "--name", "live", "--json").stdout)
    wait_for(lambda: code_of(ask(gw, live["secret"])) == "ok", timeout=5)
    expired = ask(gw, past["secret"])
    assert expired.status_code == 401 and code_of(expired) == "key_expired" and "expired" in expired.json()["error"]["message"]
    soon = (time.time() + 2)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(soon))
    updated = keys_cli(gw, "update", live["id"], "--expires-at", stamp, "--json")
    assert updated.returncode == 0 and json.loads(updated.stdout)["expires_at"].startswith(stamp)
    wait_for(lambda: code_of(ask(gw, live["secret"])) == "key_expired", timeout=8)
    cleared = keys_cli(gw, "update", live["id"], "--expires-at", "none")
    assert cleared.returncode == 0, cleared.stderr
    wait_for(lambda: code_of(ask(gw, live["secret"])) == "ok", timeout=5)
    bad = keys_cli(gw, "update", live["id"], "--expires-at", "next week")
    assert bad.returncode == 2 and "'next week' is not an ISO date/time" in bad.stderr


def test_a_rotated_key_keeps_its_old_secret_for_the_grace_then_key_rotated(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    key = json.loads(keys_cli(gw, "create", "--name", "rot", "--json").stdout)
    old = key["secret"]
    wait_for(lambda: code_of(ask(gw, old)) == "ok", timeout=5)
    rotated = keys_cli(gw, "rotate", key["id"], "--grace", "3s", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["secret"]
    assert new != old and new.startswith(f"tw_{key['id']}_")
    wait_for(lambda: code_of(ask(gw, new)) == "ok", timeout=5)
    assert code_of(ask(gw, old)) == "ok", "the old secret works during the grace"
    wait_for(lambda: code_of(ask(gw, old)) == "key_rotated", timeout=8)
    assert code_of(ask(gw, new)) == "ok"
    forged = ask(gw, new[:-4] + ("0000" if not new.endswith("0000") else "1111"))
    assert code_of(forged) == "invalid_api_key"
    assert keys_cli(gw, "rotate", key["id"], "--grace", "soon").returncode == 2
    missing = keys_cli(gw, "rotate", "nosuchkey")
    assert missing.returncode == 1 and "nosuchkey" in missing.stderr


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_both_key_stores_keep_expiry_and_rotation(store_kind, request, tmp_path) -> None:
    from pathlib import Path

    from tollway.accounting.keys.lifecycle import admitted
    from tollway.accounting.keys.records import KeySpec, new_record, new_secret
    from tollway.accounting.keys.store import open_key_store
    from tollway.core.errors import GatewayError

    url = request.getfixturevalue("postgres_url") if store_kind == "postgres" else None
    store = open_key_store(url, Path(tmp_path / "keys.db"))
    try:
        key_id, old = new_secret()
        store.create(new_record(key_id, old, KeySpec(name="k", expires_at="2999-01-01T00:00:00+00:00")))
        new = f"tw_{key_id}_" + "cd" * 24
        store.rotate(key_id, new, "2000-01-01T00:00:00+00:00")  # a grace already over
        record = store.get(key_id)
        assert (record.expires_at, record.prev_until) == ("2999-01-01T00:00:00+00:00", "2000-01-01T00:00:00+00:00")
        assert admitted(record, new) is False, "a key with an expiry is checked every time, not remembered"
        with pytest.raises(GatewayError) as refused:
            admitted(record, old)
        assert refused.value.code == "key_rotated"
        expired = store.update(key_id, KeySpec(expires_at="2001-01-01T00:00:00+00:00"))
        with pytest.raises(GatewayError) as late:
            admitted(expired, new)
        assert late.value.code == "key_expired"
        assert admitted(store.update(key_id, KeySpec(expires_at="")), new) is True
    finally:
        store.close()


def test_the_admin_api_imports_rotates_and_refuses_bad_secrets(emulator, gateway_factory) -> None:
    from tests.accounting.support import ADMIN_KEY

    gw = gateway_factory(budget_config(emulator), env=ENV)
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}

    def post(path: str, body: dict | None = None) -> httpx.Response:
        return httpx.post(f"{gw.url}{path}", json=body, headers=admin, timeout=10)

    made = post("/admin/keys", {"name": "moved", "secret": IMPORTED, "expires_at": "2999-01-01T00:00:00Z"})
    assert made.status_code == 201, made.text
    assert (made.json()["id"], made.json()["expires_at"]) == ("migrated1", "2999-01-01T00:00:00+00:00")
    assert code_of(ask(gw, IMPORTED)) == "ok", "the replica that took the write knows the key at once"
    again = post("/admin/keys", {"name": "twice", "secret": IMPORTED})
    assert again.status_code == 409 and again.json()["error"]["code"] == "key_exists"
    bad = post("/admin/keys", {"name": "bad", "secret": "sk-1234"})
    assert bad.status_code == 400 and "must look like tw_<id>_<hex>" in bad.json()["error"]["message"]
    assert "sk-1234" not in bad.text
    rotated = post("/admin/keys/migrated1/rotate", {"grace": "1h"})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert code_of(ask(gw, new)) == "ok" and code_of(ask(gw, IMPORTED)) == "ok", "the old one, in its grace"
    assert post("/admin/keys/migrated1/rotate", {"grace": "forever"}).status_code == 400
    assert post("/admin/keys/nosuch/rotate").status_code == 404
    assert code_of(ask(gw, IMPORTED)) == "ok"
    ended = post("/admin/keys/migrated1/rotate", {"grace": "0s"})
    assert code_of(ask(gw, ended.json()["secret"])) == "ok"
    assert code_of(ask(gw, new)) == "key_rotated", "a grace of 0s ends the previous secret at once"
    assert code_of(ask(gw, IMPORTED)) == "invalid_api_key", "only the last rotated-out secret is kept"

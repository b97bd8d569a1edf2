"""`tollway audit residency` on ledgers written by the ledger writer: clean, violated, fail-closed, by key."""

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from click.testing import CliRunner

from tollway.ledger.schema import LedgerRow
from tollway.ledger.sqlite import LedgerWriter
from tollway.routing.audit_command import audit

NOW = datetime.now(timezone.utc)


def attempt(deployment, jurisdiction, outcome="ok"):
    return {"deployment": deployment, "provider": "p", "jurisdiction": jurisdiction, "outcome": outcome,
            "status": None, "error": "", "kind": "", "latency_ms": 1.0}


def row(rid, key, attempts, deployment="", jurisdiction="", shadow=0, age=timedelta(0)):
    return LedgerRow(id=rid, ts=(NOW - age).isoformat(), endpoint="chat", requested_model="m", status="ok",
                     http_status=200, key_id=key, deployment=deployment, jurisdiction=jurisdiction,
                     attempts=attempts, shadow=shadow)


def write(path, rows):
    async def main():
        writer = LedgerWriter(path, 0.01)
        await writer.start()
        for r in rows:
            writer.append(r)
        await writer.close()

    asyncio.run(main())
    return path


CLEAN = [
    row("r1", "k1", [attempt("eu-a", "eu", "failover"), attempt("local", "self-hosted")], "local", "self-hosted"),
    row("r1:shadow", "k1", [attempt("eu-b", "eu", "shadow")], "eu-b", "eu", shadow=1),
    row("r2", "k1", [attempt("cn-a", "cn", "skipped"), attempt("eu-a", "eu")], "eu-a", "eu"),  # skipped: never sent
    row("r3", "k2", [attempt("cn-a", "cn")], "cn-a", "cn"),  # another key
]


def invoke(*args):
    return CliRunner().invoke(audit, ["residency", *args])


def test_a_clean_ledger_passes_and_says_what_it_checked(tmp_path):
    ledger = write(tmp_path / "l.db", CLEAN)
    result = invoke("--key", "k1", "--allowed", "eu,self-hosted", "--ledger", str(ledger))
    assert result.exit_code == 0, result.output
    assert "3 requests (1 shadow copies), 4 attempts sent" in result.output
    assert "jurisdictions reached: eu 3, self-hosted 1" in result.output
    assert "OK: no attempt left eu, self-hosted" in result.output


def test_one_attempt_outside_fails_the_audit_and_is_named(tmp_path):
    violated = [*CLEAN, row("r4", "k1", [attempt("eu-a", "eu", "failover"), attempt("us-a", "us", "cancelled")],
                             "eu-a", "eu")]
    ledger = write(tmp_path / "l.db", violated)
    result = invoke("--key", "k1", "--allowed", "eu,self-hosted", "--ledger", str(ledger), "--json")
    assert result.exit_code == 1
    data = orjson.loads(result.output)
    assert data["ok"] is False
    assert data["violations"] == [{"id": "r4", "ts": violated[-1].ts, "deployment": "us-a", "jurisdiction": "us",
                                   "outcome": "cancelled", "shadow": False}]


def test_every_key_is_audited_without_key(tmp_path):
    ledger = write(tmp_path / "l.db", CLEAN)
    result = invoke("--allowed", "eu,self-hosted", "--ledger", str(ledger))
    assert result.exit_code == 1 and "request r3: cn-a (cn), ok" in result.output


def test_an_attempt_without_a_jurisdiction_cannot_be_proven_inside(tmp_path):
    ledger = write(tmp_path / "l.db", [row("r1", "k1", [attempt("x", "")], "x", "")])
    result = invoke("--key", "k1", "--allowed", "eu", "--ledger", str(ledger))
    assert result.exit_code == 1 and "(not recorded)" in result.output


def test_since_limits_the_rows(tmp_path):
    ledger = write(tmp_path / "l.db", [row("old", "k1", [attempt("cn-a", "cn")], "cn-a", "cn", age=timedelta(days=3)),
                                       row("new", "k1", [attempt("eu-a", "eu")], "eu-a", "eu")])
    assert invoke("--key", "k1", "--since", "1d", "--allowed", "eu", "--ledger", str(ledger)).exit_code == 0
    assert invoke("--key", "k1", "--since", "7d", "--allowed", "eu", "--ledger", str(ledger)).exit_code == 1
    since = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert invoke("--key", "k1", "--since", since, "--allowed", "eu", "--ledger", str(ledger)).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["--key", "k1", "--allowed", "eu,,us"], "list jurisdictions separated by commas"),
    (["--since", "yesterday", "--allowed", "eu"], "'yesterday' is not a time: use e.g. 7d, 12h, 30m, 2026-11-01"),
    (["--ledger", "/nonexistent/l.db", "--allowed", "eu"], "no ledger at /nonexistent/l.db: start `tollway serve`"),
    ([], "give --allowed, or --key"),
])
def test_bad_input_is_named(tmp_path, args, message):
    if "--ledger" not in args:
        args = [*args, "--ledger", str(write(tmp_path / "l.db", CLEAN))]
    result = invoke(*args)
    assert result.exit_code == 2 or result.exit_code == 1
    assert message in result.output


def test_the_keys_own_residency_is_the_default_policy(tmp_path):
    from tollway.accounting.keys.records import KeySpec, new_record, new_secret
    from tollway.accounting.keys.store import open_key_store

    ledger = write(tmp_path / "l.db", [row("r1", "placeholder", [attempt("eu-a", "eu")], "eu-a", "eu")])
    store = open_key_store(None, ledger)
    key_id, secret = new_secret()
    store.create(new_record(key_id, secret, KeySpec(name="eu team", residency=("eu",))))
    open_id, open_secret = new_secret()
    store.create(new_record(open_id, open_secret, KeySpec(name="anywhere")))
    store.close()
    write(ledger, [row("r2", key_id, [attempt("eu-a", "eu")], "eu-a", "eu"),
                   row("r3", key_id, [attempt("us-a", "us", "failover"), attempt("eu-a", "eu")], "eu-a", "eu")])
    result = invoke("--key", key_id, "--ledger", str(ledger))
    assert result.exit_code == 1 and "allowed eu" in result.output and "us-a (us), failover" in result.output
    unrestricted = invoke("--key", open_id, "--ledger", str(ledger))
    assert unrestricted.exit_code == 1 and "has no residency restriction" in unrestricted.output
    missing = invoke("--key", "nosuchkey", "--ledger", str(ledger))
    assert missing.exit_code == 1 and "no key 'nosuchkey'" in missing.output

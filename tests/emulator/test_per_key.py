"""Several upstream accounts on one emulator, told apart by the key each request presents: a profile that
accepts several keys, faults aimed at one key, and the request log's key fingerprint (never the key)."""

from __future__ import annotations

import hashlib

from tests.emulator.support import chat_body, post

KEY_A, KEY_B = "sk-emulated-account-a", "sk-emulated-account-b"


def call(emulator, key: str | None, dialect: str = "deepseek", model: str = "m"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return post(f"{emulator.base_url(dialect)}/chat/completions", chat_body(model=model), headers)


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def test_a_fault_aimed_at_one_key_leaves_the_other_keys_served(emulator) -> None:
    emulator.set_profile("m", {"faults": [{"kind": "insufficient_balance", "api_key": KEY_A}]})
    assert call(emulator, KEY_A).status == 402
    assert call(emulator, KEY_B).status == 200
    assert call(emulator, None).status == 200
    assert call(emulator, KEY_A).body["error"]["message"] == "Insufficient Balance"


def test_a_fault_aimed_at_one_key_does_not_use_up_another_keys_selector(emulator) -> None:
    emulator.set_profile("m", {"faults": [{"kind": "server_error", "api_key": KEY_A, "probability": 1.0},
                                          {"kind": "rate_limit", "first": 1}]})
    assert call(emulator, KEY_B).status == 429, "the aimed fault is passed over; the next one fires"
    assert call(emulator, KEY_A).status == 500


def test_several_accepted_keys_and_a_revoked_one(emulator) -> None:
    emulator.set_profile("m", {"api_keys": [KEY_B, "sk-another"]})
    assert call(emulator, KEY_A).status == 401
    assert call(emulator, KEY_B).status == 200
    assert call(emulator, "sk-another").status == 200
    assert call(emulator, None).status == 401
    shown = emulator._call("GET", "/_emulator/models")["models"]["m"]
    assert shown["api_keys"] == ["***", "***"]


def test_the_log_names_the_key_by_fingerprint_only(emulator) -> None:
    emulator.set_profile("m", {"faults": [{"kind": "insufficient_balance", "api_key": KEY_A}]})
    call(emulator, KEY_A)
    call(emulator, KEY_B)
    log = emulator.requests(model="m")
    assert [entry["key_fingerprint"] for entry in log] == [fingerprint(KEY_A), fingerprint(KEY_B)]
    everything = str(log) + str(emulator._call("GET", "/_emulator/models"))
    assert KEY_A not in everything and KEY_B not in everything

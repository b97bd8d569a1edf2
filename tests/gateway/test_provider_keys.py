"""Several API keys per provider on real processes: the emulator stands in for two (or three) upstream
accounts told apart by the key they are sent; `tollway serve` uses the keys in turn, skips a revoked or
empty one, probes it again after its cool-down, keeps it held off across a reload that adds a key, and
never shows a key anywhere."""

from __future__ import annotations

import collections
import hashlib
import os
import re
import signal
import time

import httpx
import pytest
import yaml

from tests.gateway.support import chat, emulator_config

pytestmark = pytest.mark.slow
KEYS = {"DS_KEY_A": "sk-account-a-secret-1111", "DS_KEY_B": "sk-account-b-secret-2222",
        "DS_KEY_C": "sk-account-c-secret-3333", "DS_KEY": "sk-ds-test-secret-0001", "QW_KEY": "sk-qw-test-secret-0002", "KM_KEY": "sk-km-test-secret-0003",
        "OA_KEY_A": "sk-openai-a-secret-4444", "OA_KEY_B": "sk-openai-b-secret-5555"}
A, B, C = (hashlib.sha256(KEYS[name].encode()).hexdigest()[:8] for name in ("DS_KEY_A", "DS_KEY_B", "DS_KEY_C"))
FAST = {"ttft_ms": 2, "tpot_ms": 1, "output_tokens": 4}


def keyed_config(emu, envs: list[str], group: list[str] | None = None, key_open_s: float = 60) -> dict:
    config = emulator_config(emu, group=group or ["ds-flash"], breaker={"key_open_s": key_open_s})
    deepseek = config["providers"]["deepseek"]
    del deepseek["api_key_env"]
    deepseek["api_key_envs"] = envs
    return config


def send(gw, request_id: str, stream: bool = False) -> httpx.Response:
    answer = httpx.post(f"{gw.base_url}/chat/completions", json=chat(request_id, stream=stream), timeout=30,
                        headers={"x-request-id": request_id})
    assert answer.status_code == 200, answer.text
    return answer


def sent_keys(emu, model: str = "deepseek-flash") -> list[str]:
    return [entry["key_fingerprint"] for entry in emu.requests(model=model)]


def metric(gw, name: str, **labels: str) -> float | None:
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def attempts(row: dict) -> list[tuple]:
    return [(a["deployment"], a["outcome"], a.get("key"), a["kind"], a["status"]) for a in row["attempts"]]


@pytest.mark.parametrize("refusal", ["deepseek-402", "deepseek-401", "openai-429-insufficient-quota"])
def test_a_refused_key_is_skipped_and_the_next_key_serves(emulator, gateway_factory, refusal):
    if refusal.startswith("openai"):
        model, provider, envs = "gpt-4o-mini-upstream", "openai-accounts", ["OA_KEY_A", "OA_KEY_B"]
        first, second = (hashlib.sha256(KEYS[e].encode()).hexdigest()[:8] for e in envs)
        emulator.set_profile(model, {**FAST, "faults": [{"kind": "insufficient_balance", "api_key": KEYS["OA_KEY_A"]}]})
        config = emulator_config(emulator, breaker={"key_open_s": 60})
        config["providers"][provider] = {"kind": "openai", "base_url": emulator.base_url("openai"), "api_key_envs": envs}
        config["deployments"]["oa"] = {"provider": provider, "model": model}
        config["route_groups"]["chat"]["deployments"] = ["oa"]
        expected = ("oa", "retry", first, "out_of_funds", 429)
    else:
        model, provider, first, second = "deepseek-flash", "deepseek", A, B
        if refusal == "deepseek-402":
            emulator.set_profile(model, {**FAST, "faults": [{"kind": "insufficient_balance", "api_key": KEYS["DS_KEY_A"]}]})
            expected = ("ds-flash", "retry", A, "out_of_funds", 402)
        else:  # account A revoked its key: the upstream accepts only B's
            emulator.set_profile(model, {**FAST, "api_keys": [KEYS["DS_KEY_B"]]})
            expected = ("ds-flash", "retry", A, "upstream_auth", 401)
        config = keyed_config(emulator, ["DS_KEY_A", "DS_KEY_B"])
    gw = gateway_factory(config, env=KEYS)
    answer = send(gw, "first")
    assert answer.headers["x-tollway-attempts"] == "2"
    row = gw.row("first")
    assert row["status"] == "ok" and attempts(row) == [expected, (expected[0], "ok", second, "", None)]
    for i in range(4):
        send(gw, f"then-{i}", stream=bool(i % 2))
    assert sent_keys(emulator, model) == [first, second, second, second, second, second], "the refused key is held off"
    assert metric(gw, "tollway_upstream_key_state", provider=provider, key=first, state="open") == 1
    assert metric(gw, "tollway_upstream_key_state", provider=provider, key=second, state="closed") == 1
    assert metric(gw, "tollway_upstream_key_opened_total", provider=provider, key=first) == 1
    everything = (answer.text + str(gw.rows()) + gw.log_text() + httpx.get(f"{gw.url}/metrics").text
                  + gw.ledger.read_bytes().decode("latin-1") + str(emulator.requests()))
    for secret in KEYS.values():
        assert secret not in everything


def test_a_held_off_key_is_probed_after_its_cool_down_and_reopened_or_put_back(emulator, gateway_factory):
    refuse_a = {**FAST, "faults": [{"kind": "insufficient_balance", "api_key": KEYS["DS_KEY_A"]}]}
    emulator.set_profile("deepseek-flash", refuse_a)
    gw = gateway_factory(keyed_config(emulator, ["DS_KEY_A", "DS_KEY_B"], key_open_s=1.0), env=KEYS)
    send(gw, "refused")
    send(gw, "while-held-off")
    assert sent_keys(emulator) == [A, B, B]
    time.sleep(1.3)
    send(gw, "probe-refused")
    assert sent_keys(emulator)[3:] == [A, B], "one probe after the cool-down; still refused, B serves"
    assert metric(gw, "tollway_upstream_key_opened_total", provider="deepseek", key=A) == 2
    emulator.set_profile("deepseek-flash", FAST)  # account A topped up
    emulator.reset()
    send(gw, "still-held-off")
    time.sleep(1.3)
    for i in range(4):
        send(gw, f"back-{i}")
    assert sent_keys(emulator) == [B, A, B, A, B], "the probe answered: A is back in turn"
    assert attempts(gw.row("back-0")) == [("ds-flash", "ok", A, "", None)]
    assert metric(gw, "tollway_upstream_key_state", provider="deepseek", key=A, state="closed") == 1


def test_keys_take_equal_turns(emulator, gateway_factory):
    emulator.set_profile("deepseek-flash", FAST)
    gw = gateway_factory(keyed_config(emulator, ["DS_KEY_A", "DS_KEY_B", "DS_KEY_C"]), env=KEYS)
    for i in range(30):
        send(gw, f"spread-{i}", stream=bool(i % 3 == 0))
    spread = collections.Counter(sent_keys(emulator))
    assert spread == {A: 10, B: 10, C: 10}
    assert sent_keys(emulator)[:6] == [A, B, C, A, B, C]
    assert [gw.row(f"spread-{i}")["attempts"][0]["key"] for i in range(3)] == [A, B, C]
    for label in (A, B, C):
        assert metric(gw, "tollway_upstream_key_attempts_total", provider="deepseek", key=label) == 10


def test_with_every_key_out_the_deployment_is_unavailable_and_the_walk_moves_on(emulator, gateway_factory):
    emulator.set_profile("deepseek-flash", {**FAST, "faults": [{"kind": "insufficient_balance"}]})
    emulator.set_profile("qwen3.5-plus", FAST)
    gw = gateway_factory(keyed_config(emulator, ["DS_KEY_A", "DS_KEY_B"], group=["ds-flash", "qwen-plus"]), env=KEYS)
    send(gw, "both-refused")
    assert attempts(gw.row("both-refused")) == [("ds-flash", "retry", A, "out_of_funds", 402),
                                                ("ds-flash", "failover", B, "out_of_funds", 402),
                                                ("qwen-plus", "ok", None, "", None)]
    send(gw, "skipped")
    skipped, served = gw.row("skipped")["attempts"]
    assert skipped["outcome"] == "skipped" and served["deployment"] == "qwen-plus"
    assert skipped["error"] == (f"every API key of provider deepseek is held off "
                                f"({A} out_of_funds 402, {B} out_of_funds 402)")
    assert len(sent_keys(emulator)) == 2


def test_a_reload_adds_a_key_and_a_held_off_key_stays_held_off(emulator, gateway_factory, tmp_path):
    emulator.set_profile("deepseek-flash", {**FAST, "faults": [{"kind": "insufficient_balance",
                                                                "api_key": KEYS["DS_KEY_A"]}]})
    gw = gateway_factory(keyed_config(emulator, ["DS_KEY_A", "DS_KEY_B"]), env=KEYS)
    send(gw, "before")
    assert sent_keys(emulator) == [A, B]
    path = tmp_path / "tollway-0.yaml"
    config = yaml.safe_load(path.read_text())
    config["providers"]["deepseek"]["api_key_envs"] = ["DS_KEY_A", "DS_KEY_B", "DS_KEY_C"]
    path.write_text(yaml.safe_dump(config))
    os.kill(gw.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while metric(gw, "tollway_upstream_key_attempts_total", provider="deepseek", key=C) is None:
        assert time.monotonic() < deadline, "the reload did not take"
        time.sleep(0.1)
    for i in range(4):
        send(gw, f"after-{i}")
    assert sent_keys(emulator)[2:] == [B, C, B, C], "the new key takes its turns; A is still held off"
    assert metric(gw, "tollway_upstream_key_state", provider="deepseek", key=A, state="open") == 1
    assert re.search(r"reloaded", gw.log_text())


def test_a_reload_naming_a_missing_key_variable_is_refused_and_the_old_keys_keep_serving(emulator, gateway_factory,
                                                                                          tmp_path):
    emulator.set_profile("deepseek-flash", FAST)
    gw = gateway_factory(keyed_config(emulator, ["DS_KEY_A", "DS_KEY_B"]), env=KEYS)
    send(gw, "before")
    path = tmp_path / "tollway-0.yaml"
    config = yaml.safe_load(path.read_text())
    config["providers"]["deepseek"]["api_key_envs"] = ["DS_KEY_A", "DS_KEY_B", "DS_KEY_NOT_SET"]
    path.write_text(yaml.safe_dump(config))
    os.kill(gw.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload refused" not in gw.log_text():
        assert time.monotonic() < deadline, "the reload was not refused"
        time.sleep(0.1)
    assert ("providers.deepseek.api_key_envs[2]: environment variable DS_KEY_NOT_SET is not set"
            in gw.log_text())
    for i in range(3):
        send(gw, f"after-{i}")
    assert sent_keys(emulator) == [A, B, A, B]

"""Reload without restart (SIGHUP, POST /admin/reload, `tollway reload`), on real `tollway serve` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from decimal import Decimal

import httpx
import pytest
import yaml

from tests.accounting.support import ADMIN_KEY, ENV, Admin, budget_config, wait_for
from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY, free_port, running, stop

pytestmark = pytest.mark.slow
SLOW_STREAM = {"models": {"deepseek-flash": {"ttft_ms": 20, "tpot_ms": 100, "output_tokens": 20},
                          "qwen3.5-plus": {"ttft_ms": 5, "tpot_ms": 1, "output_tokens": 4}}}


def post_chat(gw, model: str, request_id: str) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/chat/completions", json=chat(model=model), timeout=30,
                      headers={"x-request-id": request_id})


def rewrite(path, change) -> None:
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))


def admin_reload(gw) -> httpx.Response:
    return httpx.post(f"{gw.url}/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def test_sighup_adds_a_route_group(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory(SLOW_STREAM)
    gw = gateway_factory(emulator_config(emu), env=PROVIDER_KEYS)
    assert post_chat(gw, "fast", "before").status_code == 404
    rewrite(tmp_path / "tollway-0.yaml", lambda c: c["route_groups"].update(fast={"deployments": ["qwen-plus"]}))
    os.kill(gw.proc.pid, signal.SIGHUP)
    wait_for(lambda: post_chat(gw, "fast", f"after-{time.monotonic_ns()}").status_code == 200, timeout=10)
    assert post_chat(gw, "fast", "fast-1").status_code == 200
    row = gw.row("fast-1")
    assert (row["route_group"], row["deployment"], row["status"]) == ("fast", "qwen-plus", "ok")
    assert "reloaded" in gw.log_text() and gw.proc.poll() is None


def test_a_stream_in_flight_during_sighup_finishes_on_the_old_plan(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory(SLOW_STREAM)
    gw = gateway_factory(emulator_config(emu, group=["ds-flash"]), env=PROVIDER_KEYS)
    started, chunks = threading.Event(), []

    def stream() -> None:
        with httpx.stream("POST", f"{gw.base_url}/chat/completions", json=chat(stream=True), timeout=30,
                          headers={"x-request-id": "in-flight"}) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    chunks.append(line)
                    started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(10)
    rewrite(tmp_path / "tollway-0.yaml", lambda c: c["route_groups"]["chat"].update(deployments=["qwen-plus"]))
    os.kill(gw.proc.pid, signal.SIGHUP)
    wait_for(lambda: "reloaded" in gw.log_text(), timeout=10)
    assert post_chat(gw, "chat", "after").status_code == 200  # while the old stream still runs
    reader.join(30)
    assert chunks[-1] == "data: [DONE]" and len(chunks) > 10
    old, new = gw.row("in-flight"), gw.row("after")
    assert (old["deployment"], old["status"], old["completion_tokens"]) == ("ds-flash", "ok", 20)
    assert new["deployment"] == "qwen-plus"


def test_an_invalid_config_is_refused_and_the_old_one_keeps_serving(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory(SLOW_STREAM)
    gw = gateway_factory(budget_config(emu), env=ENV)
    path = tmp_path / "tollway-0.yaml"
    good = path.read_text()
    path.write_text(good + "\nroute_groups: [unclosed\n")
    answer = admin_reload(gw)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_config" and error["type"] == "invalid_request_error"
    assert "not valid YAML" in error["message"] and "old one keeps serving" in error["message"]
    assert post_chat(gw, "chat", "still").status_code == 200
    rewrite_to = yaml.safe_load(good)
    rewrite_to["route_groups"]["chat"]["deployments"] = ["no-such-deployment"]
    path.write_text(yaml.safe_dump(rewrite_to))
    cli = subprocess.run([*TOLLWAY, "reload", "--config", str(path), "--url", gw.url], capture_output=True,
                         text=True, timeout=60, env={**os.environ, **ENV})
    assert cli.returncode == 1 and "no deployment named 'no-such-deployment'" in cli.stderr
    answer = admin_reload(gw)
    assert answer.status_code == 400 and "no deployment named 'no-such-deployment'" in answer.json()["error"]["message"]
    assert "reload refused" in gw.log_text()
    assert post_chat(gw, "chat", "still-2").status_code == 200
    assert gw.row("still-2")["deployment"] == "ds-flash"


def test_reload_needs_the_admin_key(emulator_factory, gateway_factory):
    emu = emulator_factory(SLOW_STREAM)
    gw = gateway_factory(budget_config(emu), env=ENV)
    answer = httpx.post(f"{gw.url}/admin/reload", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["message"]


def test_budget_spent_before_a_reload_still_counts_after(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory(SLOW_STREAM)
    gw = gateway_factory(budget_config(emu), env=ENV)
    admin = Admin(gw)
    key_id, secret = admin.create_key(daily_usd="5")
    gw.client(api_key=secret).chat.completions.create(**chat(), max_tokens=20)
    spent = Decimal(admin.settled_budget(key_id)["spent_usd"])
    assert spent > 0
    rewrite(tmp_path / "tollway-0.yaml", lambda c: c["route_groups"].update(fast={"deployments": ["qwen-plus"]}))
    cli = subprocess.run([*TOLLWAY, "reload", "--config", str(tmp_path / "tollway-0.yaml"), "--port", str(gw.port)],
                         capture_output=True, text=True, timeout=60, env={**os.environ, **ENV})
    assert cli.returncode == 0, cli.stderr
    assert "fast" in cli.stdout
    assert Decimal(admin.settled_budget(key_id)["spent_usd"]) == spent
    gw.client(api_key=secret).chat.completions.create(**{**chat(), "model": "fast"}, max_tokens=20)
    wait_for(lambda: Decimal(admin.settled_budget(key_id)["spent_usd"]) > spent)


def test_sighup_reaches_every_worker(emulator_factory, tmp_path):
    emu = emulator_factory(SLOW_STREAM)
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(emulator_config(emu)))
    port = free_port()
    cmd = [*TOLLWAY, "serve", "--config", str(config), "--port", str(port), "--ledger", str(tmp_path / "l.db"),
           "--workers", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/healthz", tmp_path / "serve.log", env=PROVIDER_KEYS) as proc:
        wait_for(lambda: (tmp_path / "serve.log").read_text().count("; ledger at ") == 2, timeout=15)
        rewrite(config, lambda c: c["route_groups"].update(fast={"deployments": ["qwen-plus"]}))
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: (tmp_path / "serve.log").read_text().count("reloaded") == 2, timeout=15)
        answers = [httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(model="fast"), timeout=30,
                              headers={"Connection": "close"}).status_code for _ in range(12)]
        assert answers == [200] * 12  # whichever worker took each connection
        assert stop(proc) == 0


def test_the_endpoint_under_workers_reloads_every_worker(emulator_factory, tmp_path):
    emu = emulator_factory(SLOW_STREAM)
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(budget_config(emu)))
    log = tmp_path / "serve.log"
    port = free_port()
    cmd = [*TOLLWAY, "serve", "--config", str(config), "--port", str(port), "--ledger", str(tmp_path / "l.db"),
           "--workers", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/healthz", log, env=ENV) as proc:
        wait_for(lambda: log.read_text().count("; ledger at ") == 2, timeout=15)
        rewrite(config, lambda c: c["route_groups"].update(fast={"deployments": ["qwen-plus"]}))
        answer = httpx.post(f"http://127.0.0.1:{port}/admin/reload", timeout=30,
                            headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert answer.status_code == 200 and "fast" in answer.json()["message"]
        # the worker that answered reloaded, then each worker again on the forwarded SIGHUP
        wait_for(lambda: log.read_text().count("tollway.reload: reloaded") == 3, timeout=15)
        answers = [httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(model="fast"), timeout=30,
                              headers={"Connection": "close"}).status_code for _ in range(12)]
        assert answers == [200] * 12
        assert stop(proc) == 0

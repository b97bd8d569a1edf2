"""`tollway serve --workers N`: several processes on one port, every request served and in the ledger."""

import concurrent.futures
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY, free_port, running, stop

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_two_workers_share_the_port_and_flush_every_row(emulator_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"ttft_ms": 50, "tpot_ms": 5, "output_tokens": 8}}})
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(emulator_config(emu)))
    port, ledger = free_port(), tmp_path / "ledger.db"
    cmd = [*TOLLWAY, "serve", "--config", str(config), "--port", str(port), "--ledger", str(ledger), "--workers", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/healthz", tmp_path / "serve.log", env=PROVIDER_KEYS) as proc:
        deadline = time.monotonic() + 10
        while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children(proc.pid)
        assert len(workers) == 2
        with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
            def one(i: int) -> int:
                return client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(f"n{i}", stream=bool(i % 2)),
                                   headers={"x-request-id": f"w-{i}"}).status_code
            assert list(pool.map(one, range(60))) == [200] * 60
        assert stop(proc) == 0
    import sqlite3

    conn = sqlite3.connect(ledger)
    ids = sorted(r[0] for r in conn.execute("SELECT id FROM requests"))
    assert ids == sorted(f"w-{i}" for i in range(60)), "every worker flushed its rows on SIGTERM"


def test_workers_refuse_a_managed_local_backend(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tollway.cli", "serve", "--workers", "2", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TOLLWAY_CONFIG": ""})
    assert result.returncode == 1
    assert "--workers 2: provider(s) local use `launch:`" in result.stderr

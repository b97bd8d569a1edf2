"""/metrics under `tollway serve --workers 2`: every scrape, whichever worker answers it, reads the fleet."""

import re
import time

import httpx
import pytest
import yaml

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY, free_port, running, stop

pytestmark = pytest.mark.slow
REQUESTS = 12
_SERIES = re.compile(r'^tollway_requests_total\{[^}]*\} (\S+)$', re.M)


def requests_counted(port: int) -> int:
    """The request counter summed over its series, from one scrape on a fresh connection."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10, headers={"Connection": "close"}).text
    return int(sum(float(v) for v in _SERIES.findall(text)))


def test_every_scrape_reads_every_workers_requests(emulator_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"ttft_ms": 5, "tpot_ms": 1, "output_tokens": 4}}})
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(emulator_config(emu)))
    port = free_port()
    cmd = [*TOLLWAY, "serve", "--config", str(config), "--port", str(port), "--ledger", str(tmp_path / "l.db"),
           "--workers", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/healthz", tmp_path / "serve.log", env=PROVIDER_KEYS) as proc:
        for i in range(REQUESTS):  # one connection each, so the kernel spreads them over both workers
            answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(f"n{i}"), timeout=30,
                                headers={"Connection": "close"})
            assert answer.status_code == 200
        deadline = time.monotonic() + 15  # each worker folds its rows within observe.drain_every_s
        while requests_counted(port) != REQUESTS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [requests_counted(port) for _ in range(6)] == [REQUESTS] * 6
        assert stop(proc) == 0


def test_a_single_process_keeps_its_process_figures(gateway_factory, emulator_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"ttft_ms": 5, "tpot_ms": 1, "output_tokens": 4}}})
    gw = gateway_factory(emulator_config(emu), env=PROVIDER_KEYS)
    text = httpx.get(f"http://127.0.0.1:{gw.port}/metrics", timeout=10).text
    assert "process_cpu_seconds_total" in text

"""One emulator and one gateway per test module, as real processes: routing tests share them to stay fast.

The emulator stands in for every provider; each deployment in a config is one emulator model under one
dialect path, with its provider's jurisdiction. Tests that change emulator profiles restore them.
"""

from __future__ import annotations

import subprocess
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson
import yaml

from tests.fixtures.emulator import EmulatorHandle
from tests.fixtures.gateway import GatewayHandle
from tests.processes import TOLLWAY, free_port, running

FAST_TIMEOUTS = {"connect_s": 2, "first_byte_s": 3, "between_chunks_s": 2, "response_s": 5}


@contextmanager
def emulator_and_gateway(tmp: Path, emulator_config: dict, gateway_config: dict, keys: dict[str, str] | None = None,
                         ) -> Iterator[tuple[EmulatorHandle, GatewayHandle, dict[str, str]]]:
    """Start an emulator, then a gateway whose `base_url`s say EMU (replaced by the emulator's URL).

    `keys` maps a name to a residency list ("" for none): virtual keys are created in the gateway's key store
    before it starts; their secrets are returned by name."""
    with ExitStack() as stack:
        emu_port = free_port()
        emu_config = tmp / "emulator.yaml"
        emu_config.write_text(yaml.safe_dump(emulator_config))
        emu_url = f"http://127.0.0.1:{emu_port}"
        emu_proc = stack.enter_context(running([*TOLLWAY, "emulate", "--host", "127.0.0.1", "--port", str(emu_port),
                                                "--config", str(emu_config)], f"{emu_url}/healthz", tmp / "emulator.log"))
        emu = EmulatorHandle(emu_url, tmp / "emulator.log", emu_proc)
        config = orjson.loads(orjson.dumps(gateway_config).replace(b"EMU", emu_url.encode()))
        config_path, ledger, log = tmp / "tollway.yaml", tmp / "ledger.db", tmp / "gateway.log"
        config_path.write_text(yaml.safe_dump(config))
        secrets = {name: _create_key(ledger, name, residency) for name, residency in (keys or {}).items()}
        port = free_port()
        cmd = [*TOLLWAY, "serve", "--config", str(config_path), "--port", str(port), "--ledger", str(ledger)]
        proc = stack.enter_context(running(cmd, f"http://127.0.0.1:{port}/healthz", log))
        yield emu, GatewayHandle(port, ledger, log, proc), secrets


def _create_key(ledger: Path, name: str, residency: str) -> str:
    done = subprocess.run([*TOLLWAY, "keys", "--ledger", str(ledger), "create", "--name", name, "--residency", residency,
                           "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)["secret"]


def provider(dialect: str, jurisdiction: str, kind: str | None = None, **extra: Any) -> dict:
    return {"kind": kind or dialect, "dialect": dialect, "base_url": f"EMU/{dialect}/v1", "jurisdiction": jurisdiction,
            "timeouts": FAST_TIMEOUTS, **extra}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")

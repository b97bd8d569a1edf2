"""`tollway local-model` as a real process: `path` on an empty cache, and `serve` stopping cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.processes import TOLLWAY, free_port, running, stop
from tollway.selfhost.llamacpp import LlamaServer


def test_path_on_empty_cache_says_not_built(tmp_path: Path) -> None:
    result = subprocess.run([*TOLLWAY, "local-model", "path"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "TOLLWAY_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert f"llama-server: {tmp_path}/llama.cpp/11434.0.0/llama-server  (not built)" in result.stdout
    assert "(not downloaded)" in result.stdout
    assert "tollway local-model prepare" in result.stderr


@pytest.mark.llama
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_answers_and_stops_cleanly(llama_server: LlamaServer, tmp_path: Path, sig: int) -> None:
    """`serve` reaches health, and on Ctrl-C/SIGTERM it exits 0 and takes llama-server down with it."""
    port = free_port()
    cmd = [*TOLLWAY, "local-model", "serve", "--port", str(port), "--parallel", "2"]
    log = tmp_path / "serve.log"
    with running(cmd, f"http://127.0.0.1:{port}/health", log, timeout=120) as proc:
        _wait_for_line(log, f"serving smollm2-135m at http://127.0.0.1:{port}/v1")  # what the user sees first
        assert stop(proc, sig) == 0, log.read_text()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "llama-server still listening after serve stopped"
    assert "local-model: stopped" in log.read_text()


def _wait_for_line(log: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared in the serve log:\n{log.read_text()}"
        time.sleep(0.05)

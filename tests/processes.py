"""Start real processes for tests: the gateway, the emulator, llama-server.

Every integration test talks to real processes over real loopback sockets; these helpers give each one
a free port, wait until it answers, and make sure it is stopped and its output shown if it died.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
TOLLWAY = [sys.executable, "-m", "tollway.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Wait until `url` answers 200, or fail with the process's output if it exited."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{read_log(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer in {timeout}s ({last_error})\n{read_log(proc) if proc else ''}")


def read_log(proc: subprocess.Popen) -> str:
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace")[-8000:] if path else ""


@contextmanager
def running(cmd: list[str], ready_url: str | None, log_path: Path, env: dict | None = None,
            timeout: float = 30.0, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run `cmd` until the block ends; its stdout and stderr go to `log_path`."""
    full_env = {**os.environ, **(env or {})}
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or REPO,
                            start_new_session=True)
    proc.log_path = str(log_path)  # type: ignore[attr-defined]
    try:
        if ready_url:
            wait_http(ready_url, proc, timeout)
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Stop the process (and its group) gracefully, then forcefully; return its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode

"""A llama-server process for a given binary and model: its argv, its environment, start, health, stop.

Separate from where the binary comes from (build.py, prebuilt.py) so that the prebuilt check can start a
candidate binary the same way the gateway and the tests start the accepted one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Sequence

MODEL_ALIAS = "smollm2-135m"  # the `model` name clients send and the server echoes back
DEFAULT_PARALLEL = 4
DEFAULT_CTX_SIZE = 8192  # shared by the slots: 2048 tokens each with 4 slots (SmolLM2 was trained on 8192)
STARTUP_TIMEOUT = 120.0
_PR_SET_PDEATHSIG = 1
# Resolved once here: the pre-exec hook runs between fork and exec, where loading libraries is unsafe.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


class LlamaServerError(RuntimeError):
    """llama-server did not start or did not become healthy; the message carries its log."""


class LlamaServer:
    """A running llama-server process; stop it with `.stop()` or by leaving a `with` block."""

    def __init__(self, process: subprocess.Popen, host: str, port: int, log_path: Path | None,
                 owns_log: bool = False) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.log_path = log_path
        self.model = MODEL_ALIAS
        self._owns_log = owns_log

    @property
    def root_url(self) -> str:
        """Base of llama-server's native routes (/health, /metrics, /slots, /props)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. http://127.0.0.1:8081/v1."""
        return f"{self.root_url}/v1"

    def read_log(self, max_chars: int = 8000) -> str:
        """The tail of the server's output (empty when it was sent to the terminal)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-max_chars:]

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._owns_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        return self.process.returncode

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LlamaServer(base_url={self.base_url!r}, pid={self.process.pid})"


def launch_llama_server(binary: Path, model: Path, port: int | None = None, host: str = "127.0.0.1",
                        parallel: int = DEFAULT_PARALLEL, ctx_size: int = DEFAULT_CTX_SIZE,
                        extra_args: Sequence[str] = (), *, log_path: Path | None = None,
                        inherit_output: bool = False, startup_timeout: float = STARTUP_TIMEOUT,
                        die_with_parent: bool = True) -> LlamaServer:
    """Start `binary` serving `model` and wait until healthy (see start_llama_server for the options)."""
    check_slot_layout(parallel, ctx_size)
    port = port or _free_port(host)
    cmd = llama_server_command(binary, model, host, port, parallel, ctx_size, extra_args)
    owns_log = log_path is None and not inherit_output
    if owns_log:
        log_path = _temp_log_path(port)
    process = _spawn(cmd, None if inherit_output else log_path, die_with_parent)
    server = LlamaServer(process, host, port, None if inherit_output else log_path, owns_log)
    try:
        _wait_healthy(server, startup_timeout)
    except BaseException:
        server._owns_log = False  # keep the log: the error message points at it
        server.stop()
        raise
    return server


def check_slot_layout(parallel: int, ctx_size: int) -> None:
    """Refuse a slot layout llama-server cannot serve, before anything is built or started."""
    if parallel < 1 or ctx_size < parallel:
        raise ValueError(f"need parallel >= 1 and ctx_size >= parallel, got parallel={parallel}, ctx_size={ctx_size}")


def llama_server_command(binary: Path, model: Path, host: str, port: int, parallel: int = DEFAULT_PARALLEL,
                         ctx_size: int = DEFAULT_CTX_SIZE, extra_args: Sequence[str] = ()) -> list[str]:
    """The llama-server argv tollway uses (flags checked against tools/server/README.md in the sdist)."""
    return [
        str(binary),
        "--model", str(model),
        "--alias", MODEL_ALIAS,
        "--host", host,
        "--port", str(port),
        "--parallel", str(parallel),
        "--ctx-size", str(ctx_size),  # total KV size, split evenly between the slots
        "--metrics",  # Prometheus /metrics (off by default); /slots is on by default
        *extra_args,
    ]


def llama_server_env() -> dict[str, str]:
    """Our environment, plus OpenMP told to sleep rather than spin while its threads wait (unless set).

    ggml's CPU backend uses OpenMP, whose worker threads busy-wait by default. When the cores are
    shared with the gateway, a load generator or other tests, the spinners starve the thread doing the
    work: measured on 2 busy cores, generation fell from ~20-45 to 1-4 tokens/s. Passive waiting
    keeps it fast there and costs little on an idle machine.
    """
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _wait_healthy(server: LlamaServer, timeout: float) -> None:
    """Poll GET /health until 200 ("ok"); 503 means the model is still loading."""
    url = f"{server.root_url}/health"
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LlamaServerError(f"llama-server {describe_exit(server.process.returncode)} before it was "
                                   f"healthy (log: {server.log_path}):\n{server.read_log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise LlamaServerError(f"llama-server did not report healthy at {url} within {timeout:.0f}s "
                           f"(last: {last_error}; log: {server.log_path}):\n{server.read_log()}")


def describe_exit(code: int) -> str:
    """A process's exit status in words; a signal number alone tells a user nothing."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = " (an instruction this CPU lacks: the binary was built for another CPU)" if -code == signal.SIGILL else ""
    return f"was killed by {name}{hint}"


def _spawn(cmd: list[str], log_path: Path | None, die_with_parent: bool) -> subprocess.Popen:
    """Start llama-server in its own session (a Ctrl-C meant for us must not kill it mid-cleanup)."""
    pre_exec = _die_with_parent if die_with_parent and _prctl is not None else None
    with _output_target(log_path) as output:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                env=llama_server_env(), start_new_session=True, preexec_fn=pre_exec)


def _temp_log_path(port: int) -> Path:
    handle, name = tempfile.mkstemp(prefix=f"llama-server-{port}-", suffix=".log")
    os.close(handle)
    return Path(name)


@contextlib.contextmanager
def _output_target(log_path: Path | None):
    """An open file for the child's output, or None to let it inherit our stdout/stderr."""
    if log_path is None:
        yield None
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = open(log_path, "wb")
    try:
        yield log
    finally:
        log.close()  # the child holds its own copy of the descriptor


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when the parent goes away."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

"""Run the bundled local model: llama.cpp's llama-server serving SmolLM2-135M-Instruct.

This is the one real model tollway can always reach on the user's own machine: the quickstart, the
integration tests and `tollway bench` talk to it over the same OpenAI-compatible wire as any provider.
Build and download live in build.py and model_file.py; this module starts and stops the server.

    with start_llama_server() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
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

from tollway.selfhost.build import LlamaBuildError, ensure_llama_server
from tollway.selfhost.local_cache import Progress, cache_root, llama_server_path, model_path
from tollway.selfhost.model_file import ModelFileError, ensure_model

__all__ = [
    "DEFAULT_CTX_SIZE", "DEFAULT_PARALLEL", "MODEL_ALIAS", "LlamaBuildError", "LlamaServer", "LlamaServerError",
    "ModelFileError", "cache_root", "ensure_llama_server", "ensure_model", "llama_server_command",
    "llama_server_env", "llama_server_path", "model_path", "start_llama_server",
]

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


def start_llama_server(port: int | None = None, host: str = "127.0.0.1", parallel: int = DEFAULT_PARALLEL,
                       ctx_size: int = DEFAULT_CTX_SIZE, extra_args: Sequence[str] = (), *,
                       log_path: Path | None = None, inherit_output: bool = False,
                       startup_timeout: float = STARTUP_TIMEOUT, die_with_parent: bool = True,
                       progress: Progress | None = None) -> LlamaServer:
    """Start llama-server with the cached model (building/fetching first if needed) and wait until healthy.

    `port=None` picks a free port. Output goes to `log_path`, to a temp file removed on a clean stop, or
    to this process's terminal with `inherit_output=True`. `die_with_parent` (Linux) makes the kernel
    stop the server if the *thread* that started it dies, so a killed test run leaves no server behind;
    turn it off when starting from a short-lived thread.
    """
    if parallel < 1 or ctx_size < parallel:
        raise ValueError(f"need parallel >= 1 and ctx_size >= parallel, got parallel={parallel}, ctx_size={ctx_size}")
    binary = ensure_llama_server(progress)
    model = ensure_model(progress)
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
            raise LlamaServerError(f"llama-server exited with code {server.process.returncode} before it was "
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

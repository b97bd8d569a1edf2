"""The processes under test: the fake upstream, the bare proxy, tollway and LiteLLM's proxy.

Each is started the way a user would start it, as its own process pinned to one core, on a free loopback
port; "time to ready" runs from the spawn to the first 200 from its health URL.
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PYTHON = sys.executable
UPSTREAM_KEY = "sk-bench-upstream-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Target:
    """One thing load is sent to; `proc` is None for "direct" (the upstream itself)."""

    name: str
    base: str                      # http://127.0.0.1:PORT
    chat_path: str = "/v1/chat/completions"
    api_key: str = "sk-bench-client"
    proc: subprocess.Popen | None = None
    ready_s: float | None = None
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def chat_url(self) -> str:
        return self.base + self.chat_path


def pinned(cores: int | str | None, cmd: list[str]) -> list[str]:
    """`cmd` under `taskset -c cores` (a core number or a list such as "0,1"); unpinned for None."""
    return ["taskset", "-c", str(cores), *cmd] if cores is not None else cmd


def spawn(name: str, cmd: list[str], health_url: str, log_path: Path, env: dict | None = None,
          timeout: float = 120.0) -> tuple[subprocess.Popen, float]:
    """Start `cmd`, wait for `health_url` to answer 200; return the process and the seconds it took."""
    started = time.perf_counter()
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=str(REPO), start_new_session=True)
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready; its log "
                               f"({log_path}):\n{log_path.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(health_url, timeout=1) as resp:
                if resp.status == 200:
                    return proc, time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.01)
    stop(proc)
    raise TimeoutError(f"{name} was not ready within {timeout:g}s; see {log_path}")


def stop(proc: subprocess.Popen | None, timeout: float = 20.0) -> int | None:
    """SIGTERM the process group (graceful: tollway flushes its ledger), SIGKILL if it lingers."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def start_upstream(work: Path, core: int | None) -> Target:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, ready = spawn("fake upstream", pinned(core, [PYTHON, str(HERE / "fake_upstream.py"), "--port", str(port)]),
                        base + "/health", work / "upstream.log")
    return Target("direct", base, proc=proc, ready_s=ready, log_path=work / "upstream.log")


def start_bare_proxy(upstream: Target, work: Path, core: str | int | None) -> Target:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "bare-proxy.log"
    cmd = pinned(core, [PYTHON, str(HERE / "bare_proxy.py"), "--port", str(port), "--upstream", upstream.base])
    proc, ready = spawn("bare proxy", cmd, base + "/healthz", log)
    return Target("bare aiohttp proxy", base, proc=proc, ready_s=ready, log_path=log)


def start_tollway(config_path: Path, env: dict, work: Path, core: int | str | None, api_key: str,
                  tollway_src: Path | None = None, launcher: list[str] | None = None,
                  extra_args: tuple[str, ...] = ()) -> Target:
    """`tollway serve`: the installed package, or the source tree of one revision when `tollway_src` is given;
    `launcher` replaces `python -m tollway.cli` (leak_probe.py wraps it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "tollway.log"
    ledger = work / "tollway-ledger.db"
    for stale in (ledger, ledger.with_suffix(".db-wal"), ledger.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)
    cmd = pinned(core, [*(launcher or [PYTHON, "-m", "tollway.cli"]), "serve", "--config", str(config_path), "--port", str(port),
                        "--ledger", str(ledger), *extra_args])  # default log level (info), as users run it
    if tollway_src is not None:
        env = {**env, "PYTHONPATH": str(tollway_src)}
    proc, ready = spawn("tollway", cmd, base + "/healthz", log, env=env)
    return Target("tollway", base, api_key=api_key, proc=proc, ready_s=ready, log_path=log,
                  extra={"ledger": ledger})


def start_redis(work: Path, core: int | None, timeout: float = 20.0) -> Target:
    """A throwaway redis-server (no persistence) for tollway's shared counters; `base` is its URL."""
    port = free_port()
    log = work / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(pinned(core, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                              "--appendonly", "no"]),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Target("redis", f"redis://127.0.0.1:{port}/0", proc=proc, log_path=log)
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise TimeoutError(f"redis-server did not listen within {timeout:g}s; see {log}")


LITELLM_VENV = HERE / ".venv-litellm"
LITELLM_SPEC = "litellm[proxy]"
# clients authenticate with the master key (no database, so no virtual keys): a key check, like tollway's
LITELLM_MASTER_KEY = "sk-bench-7f3a9c2e5b1d4086a2c4e6f8b0d2a4c6"


def ensure_litellm_venv(log: Path) -> Path | None:
    """LiteLLM in its own venv (cached between runs); None, with the reason in `log`, if it can't be had."""
    binary = LITELLM_VENV / "bin" / "litellm"
    if binary.exists():
        return binary
    with open(log, "wb") as out:
        steps = [[sys.executable, "-m", "venv", str(LITELLM_VENV)],
                 [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", LITELLM_SPEC]]
        for step in steps:
            if subprocess.run(step, check=False, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                return None
    return binary if binary.exists() else None


def litellm_version() -> str:
    out = subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-c",
                          "from importlib.metadata import version; print(version('litellm'))"],
                         check=False, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def start_litellm(binary: Path, upstream: Target, work: Path, core: str | int | None) -> Target:
    """LiteLLM's proxy as its docs start it: a config with one model, a master key, no database, no callbacks,
    one worker."""
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: chat\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream.base}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "litellm.log"
    env = {"LITELLM_MASTER_KEY": LITELLM_MASTER_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "TELEMETRY": "False",
           "NO_DOCS": "True", "DISABLE_ADMIN_UI": "True"}
    cmd = pinned(core, [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                        "--num_workers", "1"])
    proc, ready = spawn("litellm", cmd, base + "/health/liveliness", log, env=env, timeout=180)
    return Target("LiteLLM proxy", base, api_key=LITELLM_MASTER_KEY, proc=proc, ready_s=ready, log_path=log,
                  extra={"version": litellm_version()})

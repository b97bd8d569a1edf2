"""Closed-loop maximum throughput with Debian's `wrk` and a Lua POST script.

wrk is written in C and spends a few microseconds per request, so on its own core it can saturate any
Python gateway; its Lua `done` hook prints the summary as JSON so nothing is scraped from prose.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int          # connect/read/write/timeout errors plus non-2xx answers
    p50_ms: float
    p99_ms: float

    @property
    def ok_requests(self) -> int:
        return max(0, self.requests - self.errors)

    @property
    def rps(self) -> float:
        return self.ok_requests / self.seconds if self.seconds else 0.0


def chat_body(model: str, stream: bool) -> str:
    body: dict = {"model": model, "max_tokens": 64,
                  "messages": [{"role": "user", "content": "Say hello in one short sentence, please."}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return json.dumps(body, separators=(",", ":"))


def ensure_wrk() -> str | None:
    """The wrk binary, installing Debian's package when missing and allowed; None with no way to get it."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False, capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False, capture_output=True)
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, body: str, api_key: str, seconds: float, connections: int, core: int) -> WrkResult:
    """One wrk run pinned to `core`; raises RuntimeError with wrk's output if it printed no summary."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA.format(body=body, key=api_key))
    try:
        cmd = ["taskset", "-c", str(core), wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", script.name, url]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        Path(script.name).unlink(missing_ok=True)
    for line in proc.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data = json.loads(line[len("WRK_JSON "):])
            errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            return WrkResult(data["requests"], data["duration_us"] / 1e6, errors,
                             data["p50_us"] / 1000, data["p99_us"] / 1000)
    raise RuntimeError(f"wrk printed no summary (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

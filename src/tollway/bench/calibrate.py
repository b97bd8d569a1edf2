"""`tollway bench --calibrate`: how fast can this client itself go on this machine?

Why: if the client saturates its core, it stamps SSE events late and reports its own slowness as the
server's. Calibration runs the real client against the built-in emulator with zero TTFT and zero per-token
delay, one token per event, at rising concurrency, and reports what the client sustained and what it
cost: client CPU per SSE event gives the ceiling of one core (events/s at 100% CPU). The emulator runs on
the same machine and takes CPU too, so the measured rates are a lower bound of the client's ceiling; the
CPU-based estimate is the client's own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from tollway.bench.client_monitor import LAG_P99_WARN_MS
from tollway.bench.lengths import LengthDist
from tollway.bench.loadgen import CONCURRENCY, LoadLevel, RunBounds
from tollway.bench.runner import BenchConfig, run_benchmark
from tollway.bench.targets import Target
from tollway.bench.workload import SyntheticWorkload

DEFAULT_LEVELS = (1, 8, 32, 128)
CALIBRATION_MODEL = "calibration"


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    concurrency: int
    requests_per_s: float
    events_per_s: float
    client_cpu_percent: float
    loop_lag_p99_ms: float
    client_cpu_us_per_event: float
    events_per_s_at_full_core: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the emulator exited with status {proc.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the emulator did not listen on port {port} within {timeout_s:g}s")


def start_emulator(output_tokens: int) -> tuple[subprocess.Popen, int]:
    """Start `tollway emulate` with no delays on a free port; return the process and the port."""
    port = _free_port()
    cmd = [sys.executable, "-m", "tollway.cli", "emulate", "--port", str(port), "--ttft-ms", "0", "--tpot-ms", "0",
           "--output-tokens", str(output_tokens), "--tokens-per-chunk", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_port(port, proc)
    except RuntimeError:
        _stop(proc)
        raise
    return proc, port


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def calibrate(levels: tuple[int, ...] = DEFAULT_LEVELS, duration_s: float = 3.0,
              output_tokens: int = 64) -> list[CalibrationPoint]:
    """Run the client against a zero-delay emulator at each concurrency and measure its own cost."""
    proc, port = start_emulator(output_tokens)
    try:
        target = Target("emulator", f"http://127.0.0.1:{port}/v1", CALIBRATION_MODEL, exact_output=True)
        workload = SyntheticWorkload(LengthDist("fixed", 32), LengthDist("fixed", output_tokens), seed=0)
        config = BenchConfig(targets=[target], levels=[LoadLevel(CONCURRENCY, c) for c in levels],
                             bounds=RunBounds(duration_s=duration_s, warmup_s=0.5), workload=workload,
                             timeout_s=30.0, keep_records=True)
        result = run_benchmark(config)
    finally:
        _stop(proc)
    points = []
    for summary, level_records in zip(result.results[0].levels, result.results[0].records.values(), strict=True):
        client = summary.client
        events = sum(len(r.content_ns) for r in level_records)
        cpu_s = client.cpu_percent / 100.0 * client.wall_s
        per_event_s = cpu_s / events if events else float("inf")
        points.append(CalibrationPoint(
            concurrency=int(summary.level), requests_per_s=len(level_records) / client.wall_s,
            events_per_s=events / client.wall_s, client_cpu_percent=client.cpu_percent,
            loop_lag_p99_ms=client.loop_lag_p99_ms, client_cpu_us_per_event=per_event_s * 1e6,
            events_per_s_at_full_core=1.0 / per_event_s if events else 0.0))
    return points


def run_calibration(console: Console, levels: tuple[int, ...] = DEFAULT_LEVELS,
                    duration_s: float = 3.0) -> list[CalibrationPoint]:
    """Calibrate and print the table and a short verdict."""
    console.print("calibrating: tollway bench against the built-in emulator (zero delays, 1 token per event)")
    points = calibrate(levels, duration_s)
    table = Table(title="client calibration (this machine)", header_style="bold")
    for column in ("concurrency", "req/s", "SSE events/s", "client CPU %", "loop lag p99 ms", "CPU us/event",
                   "events/s at 100% of a core"):
        table.add_column(column, justify="right")
    for p in points:
        table.add_row(str(p.concurrency), f"{p.requests_per_s:,.0f}", f"{p.events_per_s:,.0f}",
                      f"{p.client_cpu_percent:.0f}", f"{p.loop_lag_p99_ms:.1f}", f"{p.client_cpu_us_per_event:.1f}",
                      f"{p.events_per_s_at_full_core:,.0f}")
    console.print(table)
    trusted = [p for p in points if p.loop_lag_p99_ms <= LAG_P99_WARN_MS]
    ceiling = min((p.events_per_s_at_full_core for p in points), default=0.0)
    console.print(f"client ceiling: about {ceiling:,.0f} SSE events/s on one core "
                  f"({ceiling * 0.7:,.0f}/s keeps it below 70% CPU, where timings stay trustworthy).")
    if trusted:
        best = max(trusted, key=lambda p: p.events_per_s)
        console.print(f"highest measured load with loop lag p99 <= {LAG_P99_WARN_MS:g} ms: {best.events_per_s:,.0f} "
                      f"events/s at concurrency {best.concurrency} (the emulator shares this machine, so this is "
                      "a lower bound).")
    else:
        console.print(f"[yellow]even the lightest level had loop lag p99 above {LAG_P99_WARN_MS:g} ms: this machine "
                      "is busy; latency figures from it carry that much noise[/yellow]")
    return points

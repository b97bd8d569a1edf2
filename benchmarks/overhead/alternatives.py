"""Side by side in one run: the HTTP servers, HTTP clients and JSON libraries tollway's hot path could use.

Servers answer the same minimal endpoint (alt_servers.py) under wrk; clients make the same upstream calls
(alt_clients.py); both run pinned to the gateway core with everything else on the load core, and are
judged by CPU milliseconds per request, the number that decides how many requests one core can carry.

    .venv/bin/python benchmarks/overhead/alternatives.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

import alt_json
import measure
import targets
from targets import HERE, PYTHON, Target, pinned, spawn, stop
from wrk import chat_body, ensure_wrk, run_wrk

SERVERS = {
    "aiohttp web server": lambda port: [PYTHON, str(HERE / "alt_servers.py"), "aiohttp", str(port)],
    "uvicorn (uvloop + httptools, ASGI)": lambda port: [PYTHON, str(HERE / "alt_servers.py"), "uvicorn", str(port)],
    "granian (RSGI, 1 worker, 1 runtime thread)": lambda port: [
        str(Path(PYTHON).with_name("granian")), "--interface", "rsgi", "--workers", "1", "--runtime-threads", "1",
        "--loop", "uvloop", "--no-log", "--host", "127.0.0.1", "--port", str(port), "alt_servers:rsgi_app"],
    "raw asyncio Protocol + httptools": lambda port: [PYTHON, str(HERE / "alt_servers.py"), "raw", str(port)],
}
CLIENTS = {"aiohttp ClientSession": "aiohttp", "httpx AsyncClient": "httpx", "raw httptools client": "raw"}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def servers(work: Path, gateway_core: str | int | None, load_core: int | None, wrk: str, seconds: float,
            rounds: int) -> list[str]:
    """All servers up at once (idle ones cost nothing), measured round-robin; medians reported."""
    running: dict[str, Target] = {}
    lines = ["| server | req/s (wrk, 50 connections) | CPU ms/request |", "| --- | ---: | ---: |"]
    failed = []
    try:
        for name, command in SERVERS.items():
            port = targets.free_port()
            try:
                proc, _ = spawn(name, pinned(gateway_core, command(port)), f"http://127.0.0.1:{port}/health",
                                work / f"alt-server-{port}.log", env={"PYTHONPATH": str(HERE)})
            except (RuntimeError, TimeoutError) as exc:
                failed.append(f"| {name} | failed to start: {str(exc).splitlines()[0]} | – |")
                continue
            running[name] = Target(name, f"http://127.0.0.1:{port}", proc=proc)
        body = chat_body("chat", False)
        for target in running.values():  # warm-up
            run_wrk(wrk, target.chat_url, body, "k", 1, 50, load_core)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in running}
        for _ in range(rounds):
            for name, target in running.items():
                cpu0 = measure.procstat.sample(target.proc.pid).cpu_s
                result = run_wrk(wrk, target.chat_url, body, "k", seconds, 50, load_core)
                cpu = measure.procstat.sample(target.proc.pid).cpu_s - cpu0
                samples[name].append((result.rps, cpu * 1000 / max(1, result.ok_requests)))
    finally:
        for target in running.values():
            stop(target.proc)
    for name, runs in samples.items():
        lines.append(f"| {name} | {_median([r for r, _ in runs]):,.0f} | {_median([c for _, c in runs]):.3f} |")
    return lines + failed


def clients(upstream: Target, gateway_core: str | int | None, seconds: float, rounds: int) -> list[str]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    errors: dict[tuple[str, str], str] = {}
    for _ in range(rounds):
        for name, key in CLIENTS.items():
            for mode in ("plain", "stream"):
                cmd = pinned(gateway_core, [PYTHON, str(HERE / "alt_clients.py"), key, upstream.chat_url,
                                            str(seconds), "50", mode])
                proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=seconds + 60)
                if proc.returncode != 0:
                    errors[(name, mode)] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    continue
                data = json.loads(proc.stdout.strip().splitlines()[-1])
                samples.setdefault((name, mode), []).append(
                    (data["requests"] / seconds, data["cpu_s"] * 1000 / max(1, data["requests"])))
    lines = ["| client | mode | req/s | CPU ms/request |", "| --- | --- | ---: | ---: |"]
    for name in CLIENTS:
        for mode in ("plain", "stream"):
            label = "non-streaming" if mode == "plain" else "streaming (64 chunks)"
            runs = samples.get((name, mode))
            if not runs:
                lines.append(f"| {name} | {label} | failed: {errors.get((name, mode), '?')} | – |")
                continue
            lines.append(f"| {name} | {label} | {_median([r for r, _ in runs]):,.0f} | "
                         f"{_median([c for _, c in runs]):.3f} |")
    return lines


def run_all(work: Path, gateway_core: str | int | None, load_core: int | None, wrk: str | None, seconds: float,
            rounds: int = 3, quick: bool = False) -> list[str]:
    """Every comparison; returns Markdown lines for the report."""
    upstream = targets.start_upstream(work, load_core)
    try:
        lines = ["### HTTP servers (same minimal endpoint: read body, orjson-decode, answer 500 B)", ""]
        lines += servers(work, gateway_core, load_core, wrk, seconds, rounds) if wrk else ["wrk is missing: skipped."]
        lines += ["", "### HTTP clients (the upstream call: 50 in flight against the fake upstream)", ""]
        lines += clients(upstream, gateway_core, seconds, rounds)
    finally:
        stop(upstream.proc)
    lines += ["", "### JSON (µs per operation, best of 5)", "", *alt_json.run(quick)]
    lines += ["", f"Servers and clients: medians of {rounds} interleaved rounds of {seconds:g} s, pinned to the gateway core."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    gateway_core, load_core = (available[0], available[1]) if len(available) > 1 else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})
    work = HERE / "results" / "latest" / "work"
    work.mkdir(parents=True, exist_ok=True)
    print("\n".join(run_all(work, gateway_core, load_core, ensure_wrk(), args.seconds, args.rounds, args.quick)))


if __name__ == "__main__":
    main()

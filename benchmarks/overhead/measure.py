"""The measurements taken on each target: closed-loop maximum, open-loop latency, CPU, memory, soak.

CPU per request is the number that matters most and the one least fooled by a busy machine: it is the
CPU seconds the target's whole process tree spent (from /proc) divided by the requests it answered,
so a neighbour stealing the core lowers requests/s but not CPU per request.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass, field

import procstat
from targets import HERE, PYTHON, Target, pinned
from wrk import WrkResult, chat_body, run_wrk

MODES = ("non-streaming", "streaming")
MIB = 1024 * 1024


@dataclass
class ClosedLoop:
    mode: str
    rps: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None      # the target's process tree; None for direct
    upstream_cpu_ms_per_request: float
    upstream_served: int                  # how many requests reached the fake upstream meanwhile


@dataclass
class OpenLoop:
    mode: str
    rate: float
    duration_s: float
    scheduled: int        # requests due in the measured window
    measured: int         # ... of which answered
    errors: dict
    latency_ms: dict | None
    ttft_ms: dict | None
    send_lag_ms: dict | None
    cpu_ms_per_request: float | None
    pacing: dict


@dataclass
class TargetResult:
    name: str
    ready_s: float | None
    rss_idle_mib: float | None = None
    rss_after_mib: float | None = None
    processes: int | None = None
    closed: dict[str, ClosedLoop] = field(default_factory=dict)        # the median over rounds
    closed_rounds: dict[str, list[ClosedLoop]] = field(default_factory=dict)
    open: dict[str, OpenLoop] = field(default_factory=dict)
    soak: list[tuple[int, float]] = field(default_factory=list)  # (requests so far, RSS MiB)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def upstream_served(upstream: Target) -> int:
    with urllib.request.urlopen(upstream.base + "/stats", timeout=5) as resp:
        return json.loads(resp.read())["served"]


def set_pacing(upstream: Target, ttft_ms: float, tpot_ms: float) -> None:
    body = json.dumps({"ttft_ms": ttft_ms, "tpot_ms": tpot_ms}).encode()
    request = urllib.request.Request(upstream.base + "/control", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        resp.read()


def rss_mib(target: Target) -> float | None:
    return procstat.sample(target.proc.pid).rss_bytes / MIB if target.proc else None


def _cpu(target: Target | None) -> float:
    return procstat.sample(target.proc.pid).cpu_s if target and target.proc else 0.0


def closed_loop(wrk: str, target: Target, upstream: Target, mode: str, seconds: float, connections: int,
                load_core: int | None, url: str | None = None, body: str | None = None) -> ClosedLoop:
    """wrk at full speed; CPU of the target and of the upstream over exactly that run. The chat endpoint
    unless `url` and `body` say otherwise (the translation rows)."""
    gateway = target if target.proc else None
    served0, cpu0, up0 = upstream_served(upstream), _cpu(gateway), _cpu(upstream)
    result: WrkResult = run_wrk(wrk, url or target.chat_url, body or chat_body("chat", mode == "streaming"),
                                target.api_key, seconds, connections, load_core)
    served, cpu, up = upstream_served(upstream) - served0, _cpu(gateway) - cpu0, _cpu(upstream) - up0
    answered = max(1, result.ok_requests)
    return ClosedLoop(mode, round(result.rps, 1), result.requests, result.errors, result.p50_ms, result.p99_ms,
                      round(cpu * 1000 / answered, 4) if gateway else None, round(up * 1000 / answered, 4), served)


def median_closed(rounds: list[ClosedLoop]) -> ClosedLoop:
    """Each number's median over the rounds (requests and errors summed): one noisy round moves nothing."""
    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 4) if present else None

    return ClosedLoop(rounds[0].mode, med([r.rps for r in rounds]), sum(r.requests for r in rounds),
                      sum(r.errors for r in rounds), med([r.p50_ms for r in rounds]), med([r.p99_ms for r in rounds]),
                      med([r.cpu_ms_per_request for r in rounds]), med([r.upstream_cpu_ms_per_request for r in rounds]),
                      sum(r.upstream_served for r in rounds))


def open_loop(target: Target, upstream: Target, mode: str, rate: float, seconds: float, warmup: float,
              load_core: int | None, pacing: tuple[float, float]) -> OpenLoop:
    """Our own fixed-rate scheduler (openloop.py) in its own process on the load core."""
    set_pacing(upstream, *pacing)
    gateway = target if target.proc else None
    cpu0 = _cpu(gateway)
    cmd = [PYTHON, str(HERE / "openloop.py"), "--url", target.chat_url, "--rate", str(rate), "--duration",
           str(seconds), "--warmup", str(warmup), "--api-key", target.api_key]
    if mode == "streaming":
        cmd.append("--stream")
    try:
        proc = subprocess.run(pinned(load_core, cmd), check=False, capture_output=True, text=True, timeout=seconds + warmup + 90)
    finally:
        set_pacing(upstream, 0, 0)
    cpu = _cpu(gateway) - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"openloop.py failed against {target.name}:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    sent = max(1, round((seconds + warmup) * rate))
    return OpenLoop(mode, rate, seconds, data["scheduled"], data["measured"], data["errors"], data["latency_ms"], data["ttft_ms"],
                    data["send_lag_ms"], round(cpu * 1000 / sent, 4) if gateway else None,
                    {"ttft_ms": pacing[0], "tpot_ms": pacing[1]})


def soak(wrk: str, target: Target, total: int, chunk_seconds: float, connections: int,
         load_core: int | None) -> list[tuple[int, float]]:
    """Non-streamed load in chunks until `total` requests were answered; RSS after each chunk."""
    series: list[tuple[int, float]] = []
    done = 0
    body = chat_body("chat", False)
    while done < total:
        result = run_wrk(wrk, target.chat_url, body, target.api_key, chunk_seconds, connections, load_core)
        if result.ok_requests == 0:
            raise RuntimeError(f"soak of {target.name}: no request answered ({result})")
        done += result.ok_requests
        time.sleep(0.3)  # let the ledger writer drain its queue before RSS is read
        series.append((done, round(rss_mib(target) or 0.0, 1)))
    return series

"""The closed-loop clock starts when the request is written, checked against an upstream that stamps each byte.

The upstream (stamping_upstream.py, its own process) answers a known delay after the request's last byte
arrives and records, on the same monotonic clock, when the kernel received that byte and when it wrote
its answer. So the truth of every request is known from the receiving side: TTFT = first content written - last byte
received. The bench's figure can only exceed it by two loopback hops and its own stamping; a clock
started before the request is written adds the client's send work, which grows with concurrency.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pytest

from tests.processes import REPO
from tollway.bench.loadgen import CONCURRENCY, LoadLevel, RunBounds
from tollway.bench.runner import BenchConfig, run_benchmark
from tollway.bench.targets import Target
from tollway.bench.workload import RequestSpec, Workload

DELAY_MS = 150.0
GAP_MS = 20.0
EVENTS = 3
# Bounds on medians, in ms, per concurrency. The upstream's receive stamp is the kernel's, taken on loopback
# as the client's write goes out, so from the bench's clock start to it there is only the client's own
# code between the stamp and the send syscall: about 0.02 ms. A clock started before session.post adds
# the client's send work: about 0.3 ms at concurrency 1, several ms at 32. TTFT and E2E add the arrival
# side, the bench's stamping of each read, which waits for its event loop and for a CPU.
SEND_BOUND_MS = 0.1
LATENCY_BOUND_MS = {1: 1.0, 32: 2.0}


class NumberedWorkload(Workload):
    """Request i says 'request i', so the upstream's stamps can be matched to the bench's records."""

    kind = "numbered"

    def request(self, index: int) -> RequestSpec:
        return RequestSpec(index, ({"role": "user", "content": f"request {index}"},), output_tokens=EVENTS)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


@pytest.fixture
def upstream(tmp_path):
    stamps = tmp_path / "stamps.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.stamping_upstream", "--delay-ms", str(DELAY_MS),
                             "--gap-ms", str(GAP_MS), "--events", str(EVENTS), "--stamps", str(stamps)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1", stamps
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _bench(url: str, concurrency: int, requests: int):
    config = BenchConfig(targets=[Target("up", url, "m", exact_output=False)],
                         levels=[LoadLevel(CONCURRENCY, concurrency)],
                         bounds=RunBounds(requests=requests, warmup_requests=concurrency),
                         workload=NumberedWorkload(0), timeout_s=30, keep_records=True)
    result = run_benchmark(config)
    (records,) = result.results[0].records.values()
    return result.results[0].levels[0], [r for r in records if r.measured]


def _errors(records, stamps_path) -> dict[str, np.ndarray]:
    """Per request, in ms: what the bench measured minus the truth seen by the upstream."""
    stamps = {s["id"]: s for s in map(orjson.loads, stamps_path.read_bytes().splitlines())}
    found: dict[str, list[float]] = {"ttft": [], "e2e": [], "early_ttft": [], "write_to_arrival": []}
    for record in records:
        assert record.ok, record.error_detail
        truth = stamps[f"request {record.index}"]
        # the upstream answers after the delay, later only when its machine is busy; its stamps are the truth
        assert DELAY_MS <= (truth["first_content_ns"] - truth["last_byte_ns"]) / 1e6 < DELAY_MS + 16 + 50
        found["ttft"].append((record.content_ns[0] - record.origin_ns
                              - (truth["first_content_ns"] - truth["last_byte_ns"])) / 1e6)
        found["e2e"].append((record.end_ns - record.origin_ns - (truth["done_ns"] - truth["last_byte_ns"])) / 1e6)
        found["early_ttft"].append((record.content_ns[0] - record.due_ns
                                    - (truth["first_content_ns"] - truth["last_byte_ns"])) / 1e6)
        found["write_to_arrival"].append((truth["last_byte_ns"] - record.sent_ns) / 1e6)
    return {name: np.asarray(values) for name, values in found.items()}


@pytest.mark.slow
@pytest.mark.parametrize("concurrency, requests", [(1, 20), (32, 160)])
def test_ttft_and_e2e_are_timed_from_the_written_request(upstream, concurrency, requests):
    url, stamps = upstream
    summary, records = _bench(url, concurrency, requests)
    assert len(records) == requests
    errors = _errors(records, stamps)
    spread = {name: np.percentile(values, [10, 50, 90, 100]).round(3) for name, values in errors.items()}
    # the clock never starts after the upstream had the request, and never measures less than the truth
    assert errors["write_to_arrival"].min() >= 0, spread
    assert errors["ttft"].min() >= 0 and errors["e2e"].min() >= 0, spread
    assert np.median(errors["write_to_arrival"]) < SEND_BOUND_MS, spread
    for name in ("ttft", "e2e"):
        assert np.median(errors[name]) < LATENCY_BOUND_MS[concurrency], spread
    # the self-check reports the send delay the clock no longer counts: what an early clock would add
    delays = np.asarray([(r.sent_ns - r.due_ns) / 1e6 for r in records])
    assert summary.client.send_delay_p50_ms == pytest.approx(np.percentile(delays, 50), abs=1e-6)
    assert summary.client.send_delay_p99_ms == pytest.approx(np.percentile(delays, 99), abs=1e-6)
    assert np.allclose(errors["early_ttft"] - errors["ttft"], delays)

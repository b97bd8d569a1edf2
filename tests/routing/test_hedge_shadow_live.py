"""Hedged requests and shadow copies through a real gateway and emulator."""

import re
import time
from decimal import Decimal

import httpx
import pytest

from tests.routing.support import emulator_and_gateway, provider, wait_for

pytestmark = pytest.mark.slow

STALL_S = 1.5
PRICE = {"input": "1.00", "output": "2.00"}
GATEWAY = {
    "server": {"request_deadline_s": 20},
    "retry": {"max_attempts": 4, "retries_per_deployment": 0},
    "breaker": {"consecutive_failures": 50, "error_rate": 1.0, "min_requests": 50},
    "providers": {"openai": provider("openai", "us"), "qwen": provider("qwen", "sg"),
                  "mistral": provider("openai", "eu", kind="openai")},
    "deployments": {
        "stally": {"provider": "openai", "model": "stally", "price": PRICE},
        "steady": {"provider": "qwen", "model": "steady", "price": PRICE},
        "slow-shadow": {"provider": "mistral", "model": "slow-shadow", "price": {"input": "3.00", "output": "6.00"}},
    },
    "route_groups": {
        "hedged": {"deployments": ["stally", "steady"],
                   "hedge": {"after_ms": 250, "budget_percent": 50}},
        "unhedged": {"deployments": ["stally", "steady"]},
        "plain": {"deployments": ["steady"]},
        "mirrored": {"deployments": ["steady"], "shadow": {"deployment": "slow-shadow", "sample": 1.0}},
        "mirrored-eu-only": {"deployments": ["steady"], "residency": ["sg"],
                             "shadow": {"deployment": "slow-shadow", "sample": 1.0}},
    },
}
EMULATOR = {"default": {"output_tokens": 6},
            # every 4th request to `stally` waits STALL_S before its first token
            "models": {"stally": {"ttft_ms": 20, "faults": [{"kind": "hang", "every": 4, "hang_s": STALL_S}]},
                       "steady": {"ttft_ms": 60},
                       "slow-shadow": {"ttft_ms": 800, "output_tokens": 9}}}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with emulator_and_gateway(tmp_path_factory.mktemp("hedge"), EMULATOR, GATEWAY) as (emu, gw, _):
        with httpx.Client(base_url=gw.base_url, timeout=30) as http:
            yield emu, gw, http


def timed_stream(http, model):
    """Stream one chat request; return (seconds to the last byte, request id, deployment)."""
    started = time.monotonic()
    with http.stream("POST", "/chat/completions", json={"model": model, "stream": True,
                                                          "messages": [{"role": "user", "content": "hello"}]}) as resp:
        assert resp.status_code == 200
        body = resp.read()
    assert b"[DONE]" in body
    return time.monotonic() - started, resp.headers["x-request-id"], resp.headers["x-tollway-deployment"]


def p99(values):
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 99 // 100) - 1)]


def test_hedging_cuts_the_tail_when_one_deployment_stalls(live):
    emu, gw, http = live
    unhedged = [timed_stream(http, "unhedged")[0] for _ in range(8)]
    assert p99(unhedged) >= STALL_S, "the fault really stalls every 4th request"
    runs = [timed_stream(http, "hedged") for _ in range(24)]
    latencies = [seconds for seconds, _, _ in runs]
    assert p99(latencies) < 0.25 + 0.6, f"hedged p99 {p99(latencies):.2f}s; unhedged p99 {p99(unhedged):.2f}s"
    hedged_ids = [rid for _, rid, dep in runs if dep == "steady"]
    assert 4 <= len(hedged_ids) <= 8, "every stalled request (1 in 4) and only those were won by the hedge"
    rows = [gw.row(rid) for rid in hedged_ids]
    for row in rows:
        loser = next(a for a in row["attempts"] if a["outcome"] == "cancelled")
        winner = next(a for a in row["attempts"] if a["outcome"] == "ok")
        assert (loser["deployment"], loser["kind"], winner["deployment"]) == ("stally", "hedge_loser", "steady")
        assert loser["prompt_tokens"] > 0 and Decimal(loser["cost_usd"]) == Decimal(loser["prompt_tokens"]) / 10 ** 6
        answer = (Decimal(row["prompt_tokens"]) + 2 * Decimal(row["completion_tokens"])) / 10 ** 6
        assert Decimal(row["cost_usd"]) == answer + Decimal(loser["cost_usd"]), "both attempts are metered"


def test_the_hedge_budget_bounds_extra_requests(live):
    emu, gw, http = live
    emu.set_profile("stally", {"ttft_ms": 400})  # every request is now slower than the hedge delay
    try:
        runs = [timed_stream(http, "hedged") for _ in range(20)]
    finally:
        emu.set_profile("stally", EMULATOR["models"]["stally"])
    hedges = sum(1 for _, rid, _ in runs if any(a["outcome"] == "cancelled" or a["deployment"] == "steady"
                                                 for a in gw.row(rid)["attempts"]))
    assert 8 <= hedges <= 12, f"{hedges} hedges in 20 requests with a 50% budget"


def without_ids(body: bytes) -> bytes:
    return re.sub(rb'"(id|created|system_fingerprint)":\s*("[^"]*"|\d+)', b'"\\1":"-"', body)


def test_shadow_copies_never_change_the_clients_bytes_or_latency(live):
    emu, gw, http = live
    request = {"messages": [{"role": "user", "content": "compare me"}], "max_tokens": 6}
    for stream in (False, True):
        plain = http.post("/chat/completions", json={"model": "plain", "stream": stream, **request})
        started = time.monotonic()
        mirrored = http.post("/chat/completions", json={"model": "mirrored", "stream": stream, **request})
        took = time.monotonic() - started
        assert mirrored.status_code == plain.status_code == 200
        assert without_ids(mirrored.content) == without_ids(plain.content)
        assert took < 0.6, f"the client waited {took:.2f}s; the shadow deployment needs 0.8s"
        rid = mirrored.headers["x-request-id"]
        primary = gw.row(rid)
        assert primary["shadow"] == 0 and primary["deployment"] == "steady"
        shadow = gw.row(f"{rid}:shadow")
        assert shadow["shadow"] == 1 and shadow["deployment"] == "slow-shadow" and shadow["status"] == "ok"
        assert shadow["streamed"] == int(stream) and shadow["jurisdiction"] == "eu"
        assert shadow["latency_ms"] >= 800 and shadow["completion_tokens"] == 6
        assert Decimal(shadow["cost_usd"]) == (3 * Decimal(shadow["prompt_tokens"]) + 6 * Decimal(6)) / 10 ** 6
        assert shadow["route_group"] == "mirrored" and shadow["attempts"][0]["outcome"] == "shadow"
        if stream:
            assert shadow["ttft_ms"] >= 800
    sent = emu.requests("slow-shadow")
    assert len(sent) == 2 and sent[-1]["body"]["messages"] == request["messages"]


def test_the_shadow_copy_obeys_the_groups_residency(live):
    emu, gw, http = live
    before = len(emu.requests("slow-shadow"))
    resp = http.post("/chat/completions", json={"model": "mirrored-eu-only", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status_code == 200 and resp.headers["x-tollway-deployment"] == "steady"
    time.sleep(1.2)
    assert len(emu.requests("slow-shadow")) == before, "slow-shadow is in eu, the group allows sg only"
    rows = gw.rows()
    assert not [r for r in rows if r["id"] == resp.headers["x-request-id"] + ":shadow"]


def test_shadow_rows_are_written_before_shutdown(live):
    emu, gw, http = live
    resp = http.post("/chat/completions", json={"model": "mirrored", "messages": [{"role": "user", "content": "last"}]})
    rid = resp.headers["x-request-id"]
    wait_for(lambda: any(r["model"] == "slow-shadow" for r in emu.requests()), what="the shadow copy reached upstream")
    assert gw.terminate() == 0
    rows = {r["id"]: r for r in gw.rows()}
    assert rows[rid]["shadow"] == 0 and rows[f"{rid}:shadow"]["shadow"] == 1

"""Spillover's `max_in_flight` under concurrency, counted at the self-hosted upstream itself.

Many requests arrive at once at a group whose self-hosted deployment takes at most 3; each holds the
upstream for a second, so every request overlaps every other. Whatever else the group does (a hedge
that never fires, one that does), the upstream must never see more than 3 at a time, the rest go to the
paid deployment, every request is answered and has one ledger row naming who answered it. Afterwards
the gateway's count must be back to exactly 0: four more concurrent requests put exactly 3 on the
self-hosted deployment (a leaked slot would leave room for 2, a double release for 4).
"""

import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx
import pytest

from tests.routing.counting_upstream import CountingUpstream
from tests.routing.support import emulator_and_gateway, provider

pytestmark = pytest.mark.slow

CAP = 3
HOLD_S = 1.0
SPILLOVER = {"max_in_flight": CAP, "scrape_interval_s": 1}


def gateway_config(local_url: str) -> dict:
    return {
        "providers": {"gpu-box": {**provider("vllm", "self-hosted"), "base_url": local_url},
                      "deepseek": provider("deepseek", "cn")},
        "deployments": {
            "local": {"provider": "gpu-box", "model": "local"},
            "paid": {"provider": "deepseek", "model": "paid", "price": {"input": "0.14", "output": "0.28"}},
            "paid-fast": {"provider": "deepseek", "model": "paid-fast", "price": {"input": "0.14", "output": "0.28"}},
        },
        "route_groups": {
            "spill": {"deployments": ["local", "paid"], "spillover": SPILLOVER},
            "spill-hedged": {"deployments": ["local", "paid"], "spillover": SPILLOVER,
                             "hedge": {"after_ms": 5000, "budget_percent": 100}},
            "spill-hedge-fires": {"deployments": ["local", "paid-fast"], "spillover": SPILLOVER,
                                  "hedge": {"after_ms": 200, "budget_percent": 100}},
        },
    }


EMULATOR = {"default": {"output_tokens": 3},
            "models": {"paid": {"ttft_ms": HOLD_S * 1000}, "paid-fast": {"ttft_ms": 50}}}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with CountingUpstream(HOLD_S).running() as local:
        config = gateway_config(f"http://127.0.0.1:{local.port}/v1")
        with emulator_and_gateway(tmp_path_factory.mktemp("spill-cap"), EMULATOR, config) as (_, gw, _):
            with httpx.Client(base_url=gw.base_url, timeout=30, limits=httpx.Limits(max_connections=50)) as http:
                yield local, gw, http


def ask(http: httpx.Client, group: str, stream: bool) -> tuple[str, str]:
    """One request; (request id, the deployment that answered)."""
    body = {"model": group, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with http.stream("POST", "/chat/completions", json=body) as resp:
        text = resp.read()
    assert resp.status_code == 200, text
    if stream:
        assert text.rstrip().endswith(b"data: [DONE]"), text
    return resp.headers["x-request-id"], resp.headers["x-tollway-deployment"]


def burst(http: httpx.Client, group: str, stream: bool, count: int) -> list[tuple[str, str]]:
    """`count` requests sent at the same moment from as many threads."""
    start = Barrier(count)

    def one(_: int) -> tuple[str, str]:
        start.wait(10)
        return ask(http, group, stream)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def assert_one_true_row_each(gw, answered: list[tuple[str, str]], group: str) -> list[dict]:
    ids = {rid for rid, _ in answered}
    rows = wait_rows(gw, ids)
    assert sorted(r["id"] for r in rows) == sorted(ids), "exactly one row per request"
    by_id = {r["id"]: r for r in rows}
    for rid, deployment in answered:
        row = by_id[rid]
        assert (row["status"], row["http_status"], row["deployment"], row["route_group"]) == ("ok", 200, deployment, group)
        winner = [a for a in row["attempts"] if a["outcome"] == "ok"]
        assert [a["deployment"] for a in winner] == [deployment]
    return rows


def wait_rows(gw, ids: set[str], timeout: float = 10.0) -> list[dict]:
    """The rows of these requests, once all are written (or what there is after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in gw.rows() if r["id"] in ids]
        if len(rows) >= len(ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def assert_count_back_to_zero(local: CountingUpstream, gw, http: httpx.Client) -> None:
    """Four concurrent requests after everything finished: exactly CAP reach the self-hosted deployment."""
    local.reset()
    answered = burst(http, "spill", False, CAP + 1)
    served = sorted(dep for _, dep in answered)
    assert served == ["local"] * CAP + ["paid"], f"the gateway's in-flight count is not back to 0: {served}"
    assert local.peak == CAP
    wait_rows(gw, {rid for rid, _ in answered})


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("group", ["spill", "spill-hedged"])
def test_five_concurrent_requests_put_three_on_the_capped_deployment_and_spill_two(live, group, stream):
    local, gw, http = live
    local.reset()
    answered = burst(http, group, stream, 5)
    assert local.peak == CAP, f"the self-hosted upstream saw {local.peak} at once; the cap is {CAP}"
    assert sorted(dep for _, dep in answered) == ["local"] * 3 + ["paid"] * 2
    assert local.served == 3 and local.hung_up == 0
    assert_one_true_row_each(gw, answered, group)
    assert_count_back_to_zero(local, gw, http)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("group", ["spill", "spill-hedged"])
def test_twenty_concurrent_requests_never_exceed_the_cap(live, group, stream):
    local, gw, http = live
    local.reset()
    answered = burst(http, group, stream, 20)
    assert local.peak == CAP, f"the self-hosted upstream saw {local.peak} at once; the cap is {CAP}"
    on_local = sum(1 for _, dep in answered if dep == "local")
    assert {dep for _, dep in answered} == {"local", "paid"}, "the self-hosted one filled up, the rest spilled"
    assert on_local == local.served and local.hung_up == 0
    assert_one_true_row_each(gw, answered, group)
    assert_count_back_to_zero(local, gw, http)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_hedge_that_fires_keeps_the_cap_and_gives_back_the_losers_slots(live, stream):
    local, gw, http = live
    local.reset()
    answered = burst(http, "spill-hedge-fires", stream, 20)
    assert local.peak == CAP, f"the self-hosted upstream saw {local.peak} at once; the cap is {CAP}"
    rows = assert_one_true_row_each(gw, answered, "spill-hedge-fires")
    losers = [r for r in rows if any(a["deployment"] == "local" and a["outcome"] == "cancelled" for a in r["attempts"])]
    assert len(losers) >= 1, "at least one self-hosted racer lost to its hedge partner"
    assert len(losers) == local.hung_up, "every cancelled racer hung up on the upstream, and only those"
    assert sum(1 for _, dep in answered if dep == "local") == local.served
    assert local.served + local.hung_up >= CAP
    assert_count_back_to_zero(local, gw, http)

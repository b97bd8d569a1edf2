"""/metrics after a known mix of requests equals what the ledger says, series by series."""

from collections import Counter
from contextlib import ExitStack
from decimal import Decimal

import httpx
import orjson
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat
from tests.observe.support import (
    ADMIN_KEY,
    labels,
    observed_config,
    scrape,
    start_emulator,
    start_gateway,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed_traffic(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("metrics")
    with ExitStack() as stack:
        # ds-flash fails its first two calls (the first request's try and retry): that request falls back to qwen
        emu = start_emulator(stack, tmp_path, {"models": {
            "deepseek-flash": {"output_tokens": 12, "cache_hit_ratio": 0.5,
                               "faults": [{"kind": "server_error", "first": 2}]},
            "qwen3.5-plus": {"output_tokens": 7}}})
        config = observed_config(emu, observe={"logs": {"format": "json", "requests": True}})
        gw = start_gateway(stack, tmp_path, config, {**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY})
        yield _send_mix(gw)


def _send_mix(gw):
    client = gw.client()
    client.chat.completions.create(**chat("the first one falls back"))
    client.chat.completions.create(**chat("plain"))
    list(client.chat.completions.create(**chat("streamed"), stream=True))
    assert httpx.post(f"{gw.base_url}/chat/completions", json=chat(model="no-such-model")).status_code == 404
    assert httpx.post(f"{gw.base_url}/chat/completions", content=b"{not json").status_code == 400
    rows = gw.rows(wait_for=5)
    assert len(rows) == 5
    return gw, rows


def test_request_counts_errors_attempts_and_fallbacks(mixed_traffic):
    gw, _ = mixed_traffic
    m = scrape(gw.url)
    chat_ds = dict(route_group="chat", deployment="ds-flash", provider="deepseek")
    chat_qw = dict(route_group="chat", deployment="qwen-plus", provider="qwen")
    unrouted = dict(route_group="", deployment="", provider="")
    assert m[("tollway_requests_total", labels(**chat_ds, status="ok"))] == 2
    assert m[("tollway_requests_total", labels(**chat_qw, status="ok"))] == 1
    assert m[("tollway_requests_total", labels(**unrouted, status="client_error"))] == 2
    assert m[("tollway_errors_total", labels(**unrouted, reason="http_404"))] == 1
    assert m[("tollway_errors_total", labels(**unrouted, reason="http_400"))] == 1
    assert sum(v for (name, _), v in m.items() if name == "tollway_errors_total") == 2
    assert m[("tollway_fallbacks_total", labels(**chat_qw))] == 1
    assert ("tollway_fallbacks_total", labels(**chat_ds)) not in m
    # the first request: ds-flash failed (retry), failed again (failover), qwen-plus answered
    assert m[("tollway_attempts_total", labels(**chat_ds, outcome="retry"))] == 1
    assert m[("tollway_attempts_total", labels(**chat_ds, outcome="failover"))] == 1
    assert m[("tollway_attempts_total", labels(**chat_ds, outcome="ok"))] == 2
    assert m[("tollway_attempts_total", labels(**chat_qw, outcome="ok"))] == 1


def test_tokens_cost_and_latency_histograms_match_the_ledger(mixed_traffic):
    gw, rows = mixed_traffic
    m = scrape(gw.url)
    for deployment, provider in (("ds-flash", "deepseek"), ("qwen-plus", "qwen")):
        mine = [r for r in rows if r["deployment"] == deployment]
        route = dict(route_group="chat", deployment=deployment, provider=provider)
        for kind, column in (("prompt", "prompt_tokens"), ("cached", "cached_tokens"),
                             ("completion", "completion_tokens"), ("reasoning", "reasoning_tokens")):
            assert m[("tollway_tokens_total", labels(**route, kind=kind))] == sum(r[column] for r in mine), kind
        exact = sum((Decimal(r["cost_usd"]) for r in mine), Decimal(0))
        assert exact > 0
        assert m[("tollway_cost_usd_total", labels(**route))] == float(exact)
        assert m[("tollway_request_duration_seconds_count", labels(**route))] == len(mine)
        assert m[("tollway_ttft_seconds_count", labels(**route))] == sum(r["ttft_ms"] is not None for r in mine)
        total_s = sum(r["latency_ms"] for r in mine) / 1000
        assert m[("tollway_request_duration_seconds_sum", labels(**route))] == pytest.approx(total_s, rel=1e-9)
    ds = [r for r in rows if r["deployment"] == "ds-flash"]
    assert [r["completion_tokens"] for r in ds] == [12, 12] and all(r["cached_tokens"] > 0 for r in ds)
    # cumulative buckets end at +Inf with the count
    inf = m[("tollway_request_duration_seconds_bucket", labels(route_group="chat", deployment="ds-flash",
                                                              provider="deepseek", le="+Inf"))]
    assert inf == 2


def test_gauges_in_flight_and_breakers(mixed_traffic):
    gw, _ = mixed_traffic
    m = scrape(gw.url)
    assert m[("tollway_in_flight_requests", ())] == 0
    states = Counter()
    for (name, label_set), value in m.items():
        if name == "tollway_breaker_state":
            states[dict(label_set)["state"]] += value
    assert states == {"closed": 4, "open": 0, "half_open": 0}, "four deployments, every breaker closed"
    assert m[("tollway_breaker_state", labels(deployment="ds-flash", provider="deepseek", state="closed"))] == 1
    assert ("tollway_budget_spent_usd", ()) not in m


def test_json_request_logs_carry_the_request_id_and_no_prompt_or_secret(mixed_traffic):
    gw, rows = mixed_traffic
    lines = [orjson.loads(line) for line in gw.log_text().splitlines() if line.startswith("{")]
    requests = {line["request_id"]: line for line in lines if line.get("event") == "request"}
    assert set(requests) == {r["id"] for r in rows}
    fallback = next(line for line in requests.values() if line["deployment"] == "qwen-plus")
    assert (fallback["attempts"], fallback["status"], fallback["logger"]) == (3, "ok", "tollway.requests")
    text = gw.log_text()
    assert "falls back" not in text and "streamed" not in text.replace('"streamed"', ""), "no prompt text"
    for secret in (*PROVIDER_KEYS.values(), ADMIN_KEY):
        assert secret not in text

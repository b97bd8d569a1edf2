"""The OpenAI SDK's files and batches calls against `tollway serve` with an emulated DeepSeek and Qwen:
scheduled execution, a fake batch clock across DeepSeek's off-peak boundary, exact costs, ledger rows."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson

from tests.batch.support import PROVIDER_KEYS, batch_config, clock_env, line, sent_contents, upload, wait_for

# deepseek-flash from 2026-09-10, USD per million tokens (catalog/data/deepseek.yaml)
OFF_PEAK = {"input": Decimal("0.15"), "cached_input": Decimal("0.003"), "output": Decimal("0.60")}
QWEN_PLUS_CHECK_MODEL = "qwen3.5-plus"


def _hand_cost(usage: dict, rates: dict) -> Decimal:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    fresh = usage["prompt_tokens"] - cached
    return (fresh * rates["input"] + cached * rates["cached_input"]
            + usage["completion_tokens"] * rates["output"]) / Decimal(1_000_000)


def test_scheduled_batch_waits_for_off_peak_and_costs_the_off_peak_rate(emulator_factory, gateway_factory):
    emu = emulator_factory()
    gw = gateway_factory(batch_config(emu), env=clock_env(before_boundary_s=15))
    client = gw.client()
    uploaded = upload(client, [line("a"), line("b"), line("c")])
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    assert client.files.retrieve(uploaded.id).id == uploaded.id

    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.request_counts.total == 3
    time.sleep(2)
    assert sent_contents(emu, "deepseek-flash") == [], "sent before DeepSeek's off-peak hours began"
    assert client.batches.retrieve(batch.id).status == "in_progress"

    done = wait_for(client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts.completed == 3 and done.request_counts.failed == 0
    assert sorted(sent_contents(emu, "deepseek-flash")) == ["say a", "say b", "say c"]

    results = [orjson.loads(raw) for raw in client.files.content(done.output_file_id).content.splitlines()]
    assert [r["custom_id"] for r in results] == ["a", "b", "c"]
    rows = {row["id"]: row for row in gw.rows(wait_for=5)}
    total = Decimal(0)
    for result in results:
        assert result["response"]["status_code"] == 200
        body = result["response"]["body"]
        row = rows[result["response"]["request_id"]]
        expected = _hand_cost(body["usage"], OFF_PEAK)
        assert expected > 0
        assert Decimal(row["cost_usd"]) == expected
        assert row["batch_id"] == batch.id and row["price_rate"] == "off_peak"
        assert row["ts"] >= "2026-12-08T04:00:00"
        total += expected
    assert Decimal(done.model_extra["cost_usd"]) == total
    assert done.metadata == {"job": "nightly"}
    listed = client.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]


def test_a_cancelled_batch_sends_nothing_more_and_charges_nothing(emulator, gateway_factory):
    gw = gateway_factory(batch_config(emulator), env=clock_env(before_boundary_s=600))
    client = gw.client()
    batch = client.batches.create(input_file_id=upload(client, [line("a"), line("b")]).id,
                                  endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = wait_for(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at and done.output_file_id is None
    assert (done.request_counts.completed, done.request_counts.failed) == (0, 2)
    errors = [orjson.loads(raw) for raw in client.files.content(done.error_file_id).content.splitlines()]
    assert [(e["custom_id"], e["error"]["code"], e["response"]) for e in errors] == [
        ("a", "batch_cancelled", None), ("b", "batch_cancelled", None)]
    assert sent_contents(emulator, "deepseek-flash") == [] and done.model_extra["cost_usd"] == "0"
    rows = sorted((r["id"], r["status"], r["http_status"], r["cost_usd"], r["requested_model"], r["price_rate"])
                  for r in gw.rows(wait_for=5) if r["batch_id"] == batch.id)
    assert rows == [(f"{batch.id}-0", "cancelled", 499, "0", "chat", "standard"),
                    (f"{batch.id}-1", "cancelled", 499, "0", "chat", "standard")]


def test_listing_pages_through_a_keys_batches_newest_first(emulator, gateway_factory):
    gw = gateway_factory(batch_config(emulator), env=clock_env(before_boundary_s=600))
    client = gw.client()
    made = [client.batches.create(input_file_id=upload(client, [line("a")]).id, endpoint="/v1/chat/completions",
                                  completion_window="24h").id for _ in range(3)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    rest = client.batches.list(limit=2, after=first.data[-1].id)
    assert [b.id for b in rest.data] == [made[0]] and not rest.has_more
    assert [b.id for b in client.batches.list(limit=2)] == made[::-1]  # the SDK follows `after` itself


def test_embeddings_and_responses_lines_run_as_their_endpoints_do(emulator, gateway_factory):
    gw = gateway_factory(batch_config(emulator), env=PROVIDER_KEYS)
    client = gw.client()
    for url, body, check in (
            ("/v1/embeddings", {"model": "now", "input": "hello"}, lambda b: b["data"][0]["embedding"]),
            ("/v1/responses", {"model": "now", "input": "hello", "max_output_tokens": 30},
             lambda b: b["object"] == "response" and b["output"])):
        made = client.batches.create(
            input_file_id=upload(client, [{"custom_id": "x", "method": "POST", "url": url, "body": body}]).id,
            endpoint=url, completion_window="24h")  # type: ignore[arg-type]
        done = wait_for(client, made.id)
        assert done.status == "completed" and done.request_counts.completed == 1, (url, done)
        (result,) = [orjson.loads(raw) for raw in client.files.content(done.output_file_id).content.splitlines()]
        assert result["response"]["status_code"] == 200 and check(result["response"]["body"]), result

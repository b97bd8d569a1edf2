"""The OpenAI SDK's files and batches calls against `tollway serve` with an emulated DeepSeek and Qwen:
scheduled execution, a fake batch clock across DeepSeek's off-peak boundary, exact costs, ledger rows."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson

from tests.batch.support import batch_config, clock_env, line, sent_contents, upload, wait_for

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
    gw = gateway_factory(batch_config(emu), env=clock_env(before_boundary_s=8))
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

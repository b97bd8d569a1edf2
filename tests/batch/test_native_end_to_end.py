"""The OpenAI SDK's batches through `tollway serve` to emulated native batch upstreams (OpenAI's Batch API
and DashScope's): lines split into one share per deployment, each submitted once, results merged into
one output file, every line priced at the catalog's batch rate (half the standard price)."""

from __future__ import annotations

from decimal import Decimal

import orjson

from tests.batch.support import line, upload, wait_for

KEYS = {"OA_KEY": "sk-oa-test-secret-0003", "QW_KEY": "sk-qw-test-secret-0002"}
# USD per million tokens (catalog/data/openai.yaml, qwen.yaml); both batch tiers are half the standard rates
GPT_55 = {"input": Decimal("5"), "cached_input": Decimal("0.5"), "output": Decimal("30")}
QWEN_PLUS_SG = {"input": Decimal("0.40"), "cached_input": Decimal("0.40"), "output": Decimal("1.20")}
BATCH_FACTOR = Decimal("0.5")


def _config(emu) -> dict:
    timeouts = {"connect_s": 2, "first_byte_s": 5, "between_chunks_s": 2, "response_s": 10}
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"{emu.url}/openai/v1", "api_key_env": "OA_KEY",
                       "jurisdiction": "us", "timeouts": timeouts},
            "qwen": {"kind": "qwen", "base_url": f"{emu.url}/qwen/v1", "api_key_env": "QW_KEY",
                     "jurisdiction": "sg", "region": "ap-southeast-1", "timeouts": timeouts},
        },
        "deployments": {"gpt": {"provider": "openai", "model": "gpt-5.5", "context_window": 8000},
                        "qwen-plus": {"provider": "qwen", "model": "qwen-plus", "context_window": 8000}},
        "route_groups": {"chat": {"deployments": ["gpt"]}, "qwen": {"deployments": ["qwen-plus"]}},
        "batch": {"poll_s": 0.2, "lease_s": 3},
    }


def _hand_cost(usage: dict, rates: dict) -> Decimal:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    fresh = usage["prompt_tokens"] - cached
    standard = (fresh * rates["input"] + cached * rates["cached_input"]
                + usage["completion_tokens"] * rates["output"]) / Decimal(1_000_000)
    return standard * BATCH_FACTOR


def test_a_batch_runs_natively_at_the_batch_rate_one_upstream_batch_per_deployment(emulator_factory,
                                                                                    gateway_factory):
    emulator = emulator_factory()
    gw = gateway_factory(_config(emulator), env=KEYS)
    client = gw.client()
    lines = [line("a"), line("b"), line("c", model="qwen")]
    batch = client.batches.create(input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    done = wait_for(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 0)

    upstream = emulator.batches()
    assert len(upstream["batches"]) == 2, f"one upstream batch per deployment: {upstream}"
    assert upstream["executions"] == {"a": 1, "b": 1, "c": 1}, upstream["executions"]

    results = [orjson.loads(raw) for raw in client.files.content(done.output_file_id).content.splitlines()]
    assert sorted(r["custom_id"] for r in results) == ["a", "b", "c"]
    rows = {row["id"]: row for row in gw.rows(wait_for=5)}
    total = Decimal(0)
    for result in results:
        assert result["response"]["status_code"] == 200
        body = result["response"]["body"]
        row = rows[result["response"]["request_id"]]
        deployment = "qwen-plus" if result["custom_id"] == "c" else "gpt"
        expected = _hand_cost(body["usage"], QWEN_PLUS_SG if deployment == "qwen-plus" else GPT_55)
        assert expected > 0
        assert Decimal(row["cost_usd"]) == expected, (row, body["usage"])
        assert (row["batch_id"], row["price_rate"], row["deployment"]) == (batch.id, "batch", deployment)
        total += expected
    assert Decimal(done.model_extra["cost_usd"]) == total
    assert not [r for r in gw.rows() if r["batch_id"] == batch.id and r["status"] != "ok"]

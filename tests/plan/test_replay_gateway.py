"""End to end: a real gateway writes a ledger from real requests (openai SDK -> tollway -> emulator), and
`tollway replay` prices that ledger under a candidate config: the ledger's recorded needs and residency
reach the candidate's filters, and the candidate's cost is the rows' real tokens at its prices."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import yaml

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
CANDIDATE_PRICE = {"input": "0.2", "output": "0.8", "cached_input": "0.05"}


def candidate(gateway_config: dict) -> dict:
    """The same providers, one new deployment on the Singapore provider with a negotiated price and no vision."""
    return {
        "providers": gateway_config["providers"],
        "deployments": {"sg-flat": {"provider": "qwen", "model": "qwen3.5-plus", "context_window": 100_000,
                                    "capabilities": ["tools", "json"], "price": CANDIDATE_PRICE}},
        "route_groups": {"chat": {"deployments": ["sg-flat"], "aliases": ["gpt-4o-mini"]}},
    }


def test_a_gateway_ledger_replays_under_a_candidate(emulator_factory, gateway_factory, tmp_path: Path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12, "cache_hit_ratio": 0.5},
                                       "qwen3.5-plus": {"output_tokens": 7}}})
    config = emulator_config(emu, group=["ds-flash", "qwen-plus"])
    gw = gateway_factory(config, env=PROVIDER_KEYS)
    client = gw.client()
    for i in range(3):
        client.chat.completions.create(**chat(f"question number {i} " * 20))
    stream = client.chat.completions.create(**chat("a streamed one"), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"}, IMAGE]}])                       # served by qwen-plus
    client.chat.completions.create(**chat("only in China"), extra_headers={"x-tollway-residency": "cn"})
    rows = gw.rows(wait_for=6)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)

    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(candidate(config)))
    proc = subprocess.run([*TOLLWAY, "replay", "--config", str(path), "--ledger", str(gw.ledger), "--json", "--rows"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = orjson.loads(proc.stdout)
    decisions = {r["id"]: r for r in report["rows"]}
    by_id = {r["id"]: r for r in rows}
    image = next(r for r in rows if orjson.loads(r["request_features"])["needs"] == ["vision"])
    china = next(r for r in rows if orjson.loads(r["request_features"])["residency"] == ["cn"])
    assert decisions[image["id"]]["unserveable"]["reason"] == "capability"
    assert decisions[china["id"]]["unserveable"]["reason"] == "residency"
    served = [r for r in rows if r["id"] not in (image["id"], china["id"])]
    rates = {name: Decimal(value) for name, value in CANDIDATE_PRICE.items()}
    expected = sum(((r["prompt_tokens"] - r["cached_tokens"] - r["cache_write_tokens"]) * rates["input"]
                    + r["cached_tokens"] * rates["cached_input"] + r["cache_write_tokens"] * rates["input"]
                    + r["completion_tokens"] * rates["output"]) / 1_000_000 for r in served)
    total = report["total"]
    assert (total["requests"], total["compared"]) == (6, 4)
    assert total["unserveable"] == {"capability": 1, "context": 0, "residency": 1, "model": 0}
    assert Decimal(total["candidate_usd"]) == expected > 0
    assert Decimal(total["compared_current_usd"]) == sum(Decimal(r["cost_usd"]) for r in served)
    assert Decimal(total["current_usd"]) == sum(Decimal(r["cost_usd"]) for r in rows)
    assert any(by_id[i]["cached_tokens"] > 0 for i in decisions), "the cached rate was exercised"
    assert all(d["candidate"]["deployments"][0]["deployment"] == "sg-flat" for d in decisions.values()
               if d["unserveable"] is None)
    assert report["rows_without_features"] == 0

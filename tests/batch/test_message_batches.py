"""Anthropic's Message Batches on tollway, through the anthropic SDK: create, retrieve, results, cancel,
and Anthropic-shaped errors."""

from __future__ import annotations

import time
from decimal import Decimal

import anthropic
import pytest

from tests.batch.support import PROVIDER_KEYS, batch_config, clock_env


def _params(text: str, model: str = "now") -> dict:
    return {"model": model, "max_tokens": 40, "messages": [{"role": "user", "content": text}]}


@pytest.fixture
def sdk(emulator, gateway_factory):
    gw = gateway_factory(batch_config(emulator), env=PROVIDER_KEYS)
    return gw, anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0)


def test_the_anthropic_sdk_creates_a_message_batch_and_reads_its_results(sdk):
    gw, client = sdk
    made = client.messages.batches.create(requests=[{"custom_id": "first", "params": _params("Hello")},
                                                    {"custom_id": "second", "params": _params("Hi again")}])
    assert made.type == "message_batch" and made.id.startswith("msgbatch_")
    assert made.processing_status == "in_progress" and made.request_counts.processing == 2
    deadline = time.monotonic() + 30
    while (batch := client.messages.batches.retrieve(made.id)).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert batch.request_counts.succeeded == 2 and batch.results_url
    results = {r.custom_id: r.result for r in client.messages.batches.results(made.id)}
    assert set(results) == {"first", "second"}
    for result in results.values():
        assert result.type == "succeeded"
        assert result.message.type == "message" and result.message.content[0].type == "text"
        assert result.message.usage.output_tokens > 0
    rows = [r for r in gw.rows(wait_for=6) if r["batch_id"] == made.id]
    assert sorted(r["endpoint"] for r in rows) == ["messages", "messages"]
    assert Decimal(batch.model_extra["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in rows) > 0


def test_message_batch_errors_are_anthropic_shaped(sdk):
    _, client = sdk
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.batches.create(requests=[{"custom_id": "a", "params": _params("x", model="nope")}])
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert refused.value.body["error"]["message"].startswith("requests[0]: the model 'nope' does not exist")
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.batches.retrieve("msgbatch_missing")
    assert missing.value.body["error"]["type"] == "not_found_error"


def test_a_cancelled_message_batch_ends_with_its_unsent_requests_canceled(emulator, gateway_factory):
    gw = gateway_factory(batch_config(emulator), env=clock_env(before_boundary_s=600))
    client = anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0)
    made = client.messages.batches.create(requests=[{"custom_id": "wait", "params": _params("later", "chat")}])
    cancelling = client.messages.batches.cancel(made.id)
    assert cancelling.processing_status in ("canceling", "ended")
    deadline = time.monotonic() + 30
    while (batch := client.messages.batches.retrieve(made.id)).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert batch.request_counts.canceled == 1
    (result,) = list(client.messages.batches.results(made.id))
    assert (result.custom_id, result.result.type) == ("wait", "canceled")

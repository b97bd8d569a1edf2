"""The emulator's Anthropic Message Batches API, driven by the anthropic SDK."""

from __future__ import annotations

import time

import anthropic
import pytest

from tests.emulator.support import batch_settings, call


def request(custom_id: str, **params) -> dict:
    return {"custom_id": custom_id, "params": {"model": "claude", "max_tokens": 3,
                                               "messages": [{"role": "user", "content": "hello"}], **params}}


def sdk(emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{emulator.url}/anthropic", api_key="sk-ant-test", max_retries=0)


def wait_ended(client: anthropic.Anthropic, batch_id: str):
    for _ in range(200):
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} never ended")


def test_the_sdk_creates_polls_and_reads_results(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.2)
    client = sdk(emulator)
    batch = client.messages.batches.create(requests=[request("ok-1"), request("no-limit", max_tokens=None)])
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 2 and batch.request_counts.succeeded == 0
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    done = wait_ended(client, batch.id)
    assert done.request_counts.model_dump() == {"canceled": 0, "errored": 1, "expired": 0, "processing": 0,
                                                "succeeded": 1}
    assert done.ended_at is not None and done.results_url.endswith(f"/anthropic/v1/messages/batches/{batch.id}/results")
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["ok-1"].type == "succeeded"
    assert results["ok-1"].message.usage.output_tokens == 3 and results["ok-1"].message.usage.service_tier == "batch"
    assert results["no-limit"].type == "errored"
    assert results["no-limit"].error.error.type == "invalid_request_error"
    assert [b.id for b in client.messages.batches.list()] == [batch.id]
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"


def test_bad_requests_are_refused_whole(emulator) -> None:
    client = sdk(emulator)
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        client.messages.batches.create(requests=[request("has space")])
    with pytest.raises(anthropic.BadRequestError, match="duplicate"):
        client.messages.batches.create(requests=[request("a"), request("a")])
    with pytest.raises(anthropic.BadRequestError, match="requests"):
        client.messages.batches.create(requests=[])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_unknown")
    assert client.messages.batches.list().data == []


def test_cancel_and_results_before_the_end(emulator) -> None:
    batch_settings(emulator.url, duration_s=5.0)
    client = sdk(emulator)
    batch = client.messages.batches.create(requests=[request("a"), request("b")])
    reply = call("GET", f"{emulator.url}/anthropic/v1/messages/batches/{batch.id}/results")
    assert reply.status == 400 and "has not ended" in reply.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError, match="cancel it before deleting"):
        client.messages.batches.delete(batch.id)
    cancelling = client.messages.batches.cancel(batch.id)
    assert cancelling.processing_status == "canceling" and cancelling.cancel_initiated_at is not None
    done = wait_ended(client, batch.id)
    assert done.request_counts.canceled == 2
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["canceled", "canceled"]
    assert emulator.requests() == []

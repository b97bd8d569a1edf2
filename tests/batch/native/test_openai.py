"""The OpenAI native batch client against the emulator's Files and Batch APIs, over a real socket."""

from __future__ import annotations

import pytest

from tests.batch.native.support import KEY_ENV, chat_lines, deployment, poll_until_ended, run
from tests.emulator.support import batch_executions, batch_settings
from tollway.batch.native import OpenAIBatchClient
from tollway.batch.types import BatchLine
from tollway.core.errors import GatewayError


def test_submit_poll_through_in_progress_and_merge_every_line(emulator) -> None:
    batch_settings(emulator.url, validating_s=0.1, duration_s=0.4)
    dep = deployment(emulator.url, "openai", model="gpt-upstream")
    lines = chat_lines(4)

    async def work(client):
        submission = await client.submit(lines, dep.upstream_model, "24h")
        states = await poll_until_ended(client, submission)
        return submission, states, await client.results(submission)

    submission, states, results = run(dep, work)
    assert states == ["validating", "in_progress", "completed"]
    assert submission.upstream_batch_id.startswith("batch_") and submission.upstream_file_id.startswith("file-")
    assert submission.extra == {"endpoint": "/v1/chat/completions", "lines": 4}
    assert sorted(r.custom_id for r in results) == [f"line-{i}" for i in range(4)]
    for result in results:
        assert result.status_code == 200 and result.error is None
        assert result.body["model"] == "gpt-upstream"  # the deployment's model, not the route group's
        usage = result.body["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (7, 5, 12)
    assert batch_executions(emulator.url) == {f"line-{i}": 1 for i in range(4)}
    sent = emulator.requests("gpt-upstream")
    assert [entry["body"]["messages"][0]["content"] for entry in sent] == [f"question {i}" for i in range(4)]


def test_a_partial_failure_is_surfaced_on_its_own_line(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.1, fail_every=3, fail_status=503)
    dep = deployment(emulator.url, "openai")

    async def work(client):
        submission = await client.submit(chat_lines(6), dep.upstream_model, "24h")
        await poll_until_ended(client, submission)
        return await client.results(submission)

    by_id = {r.custom_id: r for r in run(dep, work)}
    failed = {cid for cid, r in by_id.items() if r.status_code != 200}
    assert failed == {"line-2", "line-5"}
    assert by_id["line-2"].status_code == 503 and by_id["line-2"].body["error"]["type"] == "server_error"
    assert by_id["line-2"].error == {"code": "server_error", "message": "The server is overloaded or not ready yet."}
    assert by_id["line-0"].error is None and by_id["line-0"].body["object"] == "chat.completion"


def test_cancel_keeps_finished_lines_and_reports_the_rest_as_never_run(emulator) -> None:
    batch_settings(emulator.url, duration_s=3.0)
    dep = deployment(emulator.url, "openai")

    async def work(client):
        import asyncio
        submission = await client.submit(chat_lines(6), dep.upstream_model, "24h")
        await asyncio.sleep(1.2)  # lines 0 and 1 are due at 0.5s and 1.0s
        await client.cancel(submission)
        states = await poll_until_ended(client, submission)
        return states, await client.results(submission)

    states, results = run(dep, work)
    assert states[-1] == "cancelled"
    ran = sorted(r.custom_id for r in results if r.status_code == 200)
    never = sorted(r.custom_id for r in results if r.status_code == 0)
    assert ran == ["line-0", "line-1"]
    assert never == ["line-2", "line-3", "line-4", "line-5"]
    assert {r.error["code"] for r in results if r.status_code == 0} == {"batch_cancelled"}
    assert batch_executions(emulator.url) == {"line-0": 1, "line-1": 1}


def test_embeddings_lines_carry_their_usage(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.0)
    dep = deployment(emulator.url, "openai", model="embedder")
    lines = [BatchLine(i, f"e{i}", "/v1/embeddings", "g", {"model": "g", "input": "abcdefgh"}) for i in range(2)]

    async def work(client):
        submission = await client.submit(lines, dep.upstream_model, "24h")
        await poll_until_ended(client, submission)
        return await client.results(submission)

    results = run(dep, work)
    assert [r.body["usage"] for r in results] == [{"prompt_tokens": 2, "total_tokens": 2}] * 2


def test_a_share_with_two_endpoints_is_refused_before_anything_is_sent(emulator) -> None:
    dep = deployment(emulator.url, "openai")
    lines = [*chat_lines(1), BatchLine(1, "e", "/v1/embeddings", "g", {"model": "g", "input": "x"})]
    with pytest.raises(GatewayError) as caught:
        run(dep, lambda client: client.submit(lines, "m", "24h"))
    assert caught.value.status == 400 and "one endpoint" in caught.value.message
    assert emulator.requests() == []


def test_windows_map_to_what_the_provider_takes() -> None:
    client = OpenAIBatchClient.__new__(OpenAIBatchClient)
    client.deployment = type("Dep", (), {"provider": "openai"})()
    assert client.upstream_window("24h") == "24h" and client.upstream_window("7d") == "24h"
    assert client.ends_within_s("72h") == 24 * 3600
    with pytest.raises(GatewayError, match="shorter than the 24h"):
        client.upstream_window("12h")
    with pytest.raises(GatewayError, match="not a duration"):
        client.upstream_window("soon")


def test_an_unreachable_provider_is_a_502_and_a_refusal_never_shows_the_key(emulator, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-batch-secret-123")
    dep = deployment("http://127.0.0.1:9", "openai", key=True)
    with pytest.raises(GatewayError) as caught:
        run(dep, lambda client: client.submit(chat_lines(1), "m", "24h"))
    assert caught.value.status == 502 and caught.value.code == "batch_upstream_unreachable"
    dep = deployment(emulator.url, "openai", key=True)
    with pytest.raises(GatewayError) as caught:
        run(dep, lambda client: client.state(type("S", (), {"upstream_batch_id": "batch_missing"})()))
    assert caught.value.status == 502 and "No batch found with id 'batch_missing'" in caught.value.message
    assert "sk-batch-secret-123" not in caught.value.message
    assert emulator.requests() == []

"""The Anthropic native batch client against the emulator's Message Batches API, over a real socket."""

from __future__ import annotations

import asyncio

from tests.batch.native.support import chat_lines, deployment, poll_until_ended, run
from tests.emulator.support import batch_executions, batch_settings
from tollway.batch.native import client_body
from tollway.batch.types import BatchLine


def messages_lines(count: int) -> list[BatchLine]:
    return [BatchLine(i, f"m-{i}", "/v1/messages", "g",
                      {"model": "g", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]})
            for i in range(count)]


def test_submit_poll_and_merge_messages_lines(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.3, fail_every=3, fail_kind="overloaded")
    dep = deployment(emulator.url, "anthropic", model="claude-upstream")

    async def work(client):
        submission = await client.submit(messages_lines(3), dep.upstream_model, "24h")
        states = await poll_until_ended(client, submission)
        return states, await client.results(submission)

    states, results = run(dep, work)
    assert states == ["in_progress", "completed"]
    by_id = {r.custom_id: r for r in results}
    assert by_id["m-0"].status_code == 200 and by_id["m-0"].body["type"] == "message"
    assert by_id["m-0"].body["model"] == "claude-upstream"
    usage = by_id["m-0"].body["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["service_tier"]) == (6, 4, "batch")
    assert by_id["m-2"].status_code == 529
    assert by_id["m-2"].error == {"code": "overloaded_error", "message": "Overloaded"}
    assert batch_executions(emulator.url) == {"m-0": 1, "m-1": 1, "m-2": 1}


def test_chat_lines_are_translated_and_ids_anthropic_refuses_are_mapped_back(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.0)
    dep = deployment(emulator.url, "anthropic", model="claude-upstream")
    lines = [BatchLine(0, "needs/renaming #1", "/v1/chat/completions", "g",
                       {"model": "g", "messages": [{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "hi"}], "max_tokens": 3}),
             *chat_lines(1, prefix="plain")]

    async def work(client):
        submission = await client.submit(lines, dep.upstream_model, "48h")
        await poll_until_ended(client, submission)
        return submission, await client.results(submission)

    submission, results = run(dep, work)
    assert submission.extra == {"renamed": {"tollway-line-0": "needs/renaming #1"}}
    assert sorted(r.custom_id for r in results) == ["needs/renaming #1", "plain-0"]
    sent = emulator.requests("claude-upstream")[0]["body"]
    assert sent["system"] == [{"type": "text", "text": "be brief"}] and sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert sent["max_tokens"] == 3 and "stream" not in sent
    chat = client_body(dep, "/v1/chat/completions", results[0].body)
    assert chat["object"] == "chat.completion" and chat["usage"]["completion_tokens"] == 3


def test_cancel_ends_the_batch_with_unrun_lines_marked_cancelled(emulator) -> None:
    batch_settings(emulator.url, duration_s=2.0)
    dep = deployment(emulator.url, "anthropic")

    async def work(client):
        submission = await client.submit(messages_lines(4), dep.upstream_model, "24h")
        await asyncio.sleep(0.6)  # line 0 is due at 0.5s
        await client.cancel(submission)
        states = await poll_until_ended(client, submission)
        return states, await client.results(submission)

    states, results = run(dep, work)
    assert states[-1] == "cancelled"
    by_id = {r.custom_id: r for r in results}
    assert by_id["m-0"].status_code == 200
    assert [by_id[f"m-{i}"].error["code"] for i in (1, 2, 3)] == ["batch_cancelled"] * 3
    assert batch_executions(emulator.url) == {"m-0": 1}


def test_lines_not_run_by_the_expiry_come_back_expired(emulator) -> None:
    batch_settings(emulator.url, duration_s=2.0, expire_after_s=0.6)
    dep = deployment(emulator.url, "anthropic")

    async def work(client):
        submission = await client.submit(messages_lines(4), dep.upstream_model, "24h")
        states = await poll_until_ended(client, submission)
        return states, await client.results(submission)

    states, results = run(dep, work)
    assert states == ["in_progress", "expired"]
    assert sorted(r.custom_id for r in results if r.status_code == 200) == ["m-0"]
    assert {r.error["code"] for r in results if r.status_code == 0} == {"batch_expired"}

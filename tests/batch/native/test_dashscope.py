"""The DashScope native batch client against the emulator's compatible-mode Files and Batch APIs."""

from __future__ import annotations

import pytest

from tests.batch.native.support import chat_lines, deployment, poll_until_ended, run
from tests.emulator.support import batch_executions, batch_settings
from tollway.batch.native import DashScopeBatchClient
from tollway.batch.types import BatchLine
from tollway.core.errors import GatewayError


def test_submit_poll_and_merge_under_the_qwen_prefix(emulator) -> None:
    batch_settings(emulator.url, validating_s=0.1, duration_s=0.3, fail_every=2)
    emulator.set_profile("qwen-plus", {"cache_hit_ratio": 0.5, "output_tokens": 3})
    dep = deployment(emulator.url, "qwen", model="qwen-plus")

    async def work(client):
        submission = await client.submit(chat_lines(4, prefix="q"), dep.upstream_model, "72h")
        states = await poll_until_ended(client, submission)
        return submission, states, await client.results(submission)

    submission, states, results = run(dep, work)
    assert states == ["validating", "in_progress", "completed"]
    assert submission.upstream_file_id.startswith("file-batch-")
    by_id = {r.custom_id: r for r in results}
    assert sorted(by_id) == ["q-0", "q-1", "q-2", "q-3"]
    assert {cid for cid, r in by_id.items() if r.status_code == 500} == {"q-1", "q-3"}
    assert by_id["q-1"].error["code"] == "InternalError"
    usage = by_id["q-0"].body["usage"]
    assert usage["completion_tokens"] == 3
    assert "prompt_tokens_details" not in usage  # DashScope's batch uses no context cache: no hits reported
    assert emulator.requests("qwen-plus")[0]["path"] == "/qwen/v1/chat/completions"
    assert batch_executions(emulator.url) == {"q-0": 1, "q-1": 1, "q-2": 1, "q-3": 1}


def test_the_window_is_passed_within_dashscopes_range(emulator) -> None:
    client = DashScopeBatchClient(deployment(emulator.url, "qwen"), None)  # type: ignore[arg-type]
    assert client.upstream_window("24h") == "24h"
    assert client.upstream_window("72h") == "72h"
    assert client.upstream_window("30d") == "336h"
    assert client.ends_within_s("7d") == 168 * 3600
    with pytest.raises(GatewayError, match="shorter than the 24h"):
        client.upstream_window("1h")


def test_completions_lines_are_refused_as_dashscope_does_not_batch_them(emulator) -> None:
    dep = deployment(emulator.url, "qwen")
    lines = [BatchLine(0, "c", "/v1/completions", "g", {"model": "g", "prompt": "x"})]
    with pytest.raises(GatewayError) as caught:
        run(dep, lambda client: client.submit(lines, "m", "24h"))
    assert caught.value.status == 400 and caught.value.code == "unsupported_endpoint"
    assert "/v1/completions" in caught.value.message

"""The emulator's OpenAI Files and Batch APIs (and DashScope's under /qwen), driven by the openai SDK."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.emulator.support import batch_settings, call


def jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode() + b"\n"


def chat_row(custom_id: str, model: str = "m", **body) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hello"}], **body}}


def sdk(emulator, dialect: str = "openai") -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url(dialect), api_key="sk-test", max_retries=0)


def wait_for(client: openai.OpenAI, batch_id: str, *ended: str) -> object:
    ended = ended or ("completed", "failed", "cancelled", "expired")
    for _ in range(200):
        batch = client.batches.retrieve(batch_id)
        if batch.status in ended:
            return batch
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} stuck in {batch.status}")


def test_the_sdk_runs_a_batch_end_to_end(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.2)
    client = sdk(emulator)
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_row("a", max_tokens=2), chat_row("b")])),
                                   purpose="batch")
    assert (uploaded.purpose, uploaded.status, uploaded.filename) == ("batch", "processed", "in.jsonl")
    assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.metadata == {"job": "nightly"}
    done = wait_for(client, batch.id)
    assert done.status == "completed" and done.error_file_id is None
    assert done.request_counts.model_dump() == {"completed": 2, "failed": 0, "total": 2}
    assert done.completed_at is not None and done.in_progress_at is not None and done.model == "m"
    assert done.usage.input_tokens == 2 * 6 and done.usage.output_tokens == 2 + 16  # "hello": 2 + 4 tokens
    rows = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert [row["custom_id"] for row in rows] == ["a", "b"]
    assert rows[0]["response"]["status_code"] == 200 and rows[0]["error"] is None
    assert rows[0]["response"]["body"]["usage"]["completion_tokens"] == 2
    assert rows[0]["id"].startswith("batch_req_") and rows[0]["response"]["request_id"].startswith("req_")
    assert [b.id for b in client.batches.list()] == [batch.id]
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"


def test_a_bad_line_fails_the_batch_while_validating_naming_the_line(emulator) -> None:
    client = sdk(emulator)
    cases = {
        b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}\nnot json\n':
            ("invalid_json_line", 2),
        jsonl([chat_row("a"), chat_row("a")]): ("duplicate_custom_id", 2),
        jsonl([chat_row("a"), chat_row("b", model="other")]): ("mismatched_model", 2),
        jsonl([{**chat_row("a"), "url": "/v1/embeddings"}]): ("mismatched_endpoint", 1),
    }
    for content, (code, line) in cases.items():
        uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        failed = wait_for(client, batch.id)
        assert failed.status == "failed" and failed.failed_at is not None
        assert (failed.errors.data[0].code, failed.errors.data[0].line) == (code, line)
        assert failed.request_counts.total == 0 and failed.output_file_id is None
    assert emulator.requests() == []  # nothing of a failed batch ran


def test_create_refuses_bad_fields_with_a_400_naming_them(emulator) -> None:
    client = sdk(emulator)
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_row("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                              completion_window="48h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/moderations", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="input_file_id"):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("in.jsonl", b"{}"), purpose="nonsense")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_unknown")
    assert client.batches.list().data == []


def test_cancel_via_the_sdk_and_a_second_cancel_conflicts(emulator) -> None:
    batch_settings(emulator.url, duration_s=5.0)
    client = sdk(emulator)
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_row("a"), chat_row("b")])), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = wait_for(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None and done.output_file_id is None
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert [(row["custom_id"], row["response"], row["error"]["code"]) for row in errors] == [
        ("a", None, "batch_cancelled"), ("b", None, "batch_cancelled")]
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_dashscope_takes_windows_up_to_336h_and_keeps_its_files_apart(emulator) -> None:
    batch_settings(emulator.url, duration_s=0.0)
    qwen, oai = sdk(emulator, "qwen"), sdk(emulator)
    uploaded = qwen.files.create(file=("in.jsonl", jsonl([chat_row("a", model="qwen-plus")])), purpose="batch")
    assert uploaded.id.startswith("file-batch-") and uploaded.status == "uploaded"
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve(uploaded.id)
    batch = qwen.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                completion_window="336h")  # type: ignore[arg-type]
    done = wait_for(qwen, batch.id)
    assert done.status == "completed" and done.usage is None and done.expires_at - done.created_at == 336 * 3600
    with pytest.raises(openai.BadRequestError, match="'24h' to '336h'"):
        qwen.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                            completion_window="337h")  # type: ignore[arg-type]
    row = json.loads(qwen.files.content(done.output_file_id).text)
    assert row["response"]["body"]["model"] == "qwen-plus"
    assert emulator.requests("qwen-plus")[0]["path"] == "/qwen/v1/chat/completions"


def test_per_batch_headers_override_the_settings_and_profile_faults_fail_lines(emulator) -> None:
    emulator.set_profile("flaky", {"faults": [{"kind": "rate_limit", "every": 2}]})
    client = sdk(emulator)
    rows = [chat_row(f"r{i}", model="flaky") for i in range(4)]
    uploaded = client.files.create(file=("in.jsonl", jsonl(rows)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", extra_headers={"x-emulator-batch-duration-s": "0"})
    done = wait_for(client, batch.id)
    assert done.request_counts.model_dump() == {"completed": 2, "failed": 2, "total": 4}
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert [(row["custom_id"], row["response"]["status_code"]) for row in errors] == [("r1", 429), ("r3", 429)]
    assert errors[0]["response"]["body"]["error"]["code"] == "rate_limit_exceeded"
    assert emulator.stats()["flaky"]["by_status"] == {"200": 2, "429": 2}


def test_a_bad_override_header_and_an_unknown_dialect_get_clear_errors(emulator) -> None:
    client = sdk(emulator)
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_row("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="bad emulator batch header"):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                              extra_headers={"x-emulator-batch-fail-every": "zero"})
    reply = call("GET", f"{emulator.url}/deepseek/v1/batches")
    assert reply.status == 404 and "openai, qwen" in reply.body["error"]["message"]

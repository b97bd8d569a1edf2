"""Every bad input of issue 17 gets an OpenAI-shaped 400 naming the line or the field, and nothing is
created: no file for a refused upload, no batch (and no budget hold) for a refused batch."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest

from tests.batch.support import (
    ADMIN_KEY,
    batch_config,
    clock_env,
    create_key,
    jsonl,
    line,
    table_count,
    upload,
    with_admin,
)


@pytest.fixture
def gw(emulator, gateway_factory):
    return gateway_factory(with_admin(batch_config(emulator, max_lines=3, max_file_bytes=2000, concurrency=1,
                                                   line_estimate_s=1800)),
                           env={**clock_env(before_boundary_s=600), "TOLLWAY_ADMIN_KEY": ADMIN_KEY})  # lines wait


def _refused_upload(gw, content: bytes) -> dict:
    with pytest.raises(openai.BadRequestError) as refused:
        upload(gw.client(), content)
    assert table_count(gw, "batch_files") == 0, "a refused file was kept"
    return refused.value.body


def test_a_malformed_line_is_refused_naming_it(gw):
    body = _refused_upload(gw, jsonl([line("a")]) + b'{"custom_id": "b", "url": \n')
    assert body["param"] == "line[2]" and body["code"] == "invalid_json"
    assert body["message"].startswith("Line 2 of the input file: not valid JSON")
    assert body["type"] == "invalid_request_error"


def test_a_line_without_its_fields_names_the_field(gw):
    body = _refused_upload(gw, jsonl([line("a"), {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
                                                  "body": {"model": "chat"}}]))
    assert body["param"] == "line[2].body.messages"


def test_a_file_over_the_size_or_line_limit_is_refused(gw):
    body = _refused_upload(gw, jsonl([line(str(i)) for i in range(4)]))
    assert (body["param"], body["code"]) == ("file", "too_many_lines") and "at most 3" in body["message"]
    body = _refused_upload(gw, jsonl([line("big", content="x" * 2500)]))
    assert (body["param"], body["code"]) == ("file", "file_too_large") and "2000 bytes" in body["message"]


def test_duplicate_custom_ids_are_refused_naming_both_lines(gw):
    body = _refused_upload(gw, jsonl([line("same"), line("other"), line("same")]))
    assert (body["param"], body["code"]) == ("line[3].custom_id", "duplicate_custom_id")
    assert "repeats line 1" in body["message"]


def test_an_unsupported_endpoint_is_refused_in_a_line_and_for_the_batch(gw):
    body = _refused_upload(gw, jsonl([{**line("a"), "url": "/v1/moderations"}]))
    assert (body["param"], body["code"]) == ("line[1].url", "unsupported_endpoint")
    client = gw.client()
    uploaded = upload(client, [line("a")])
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/moderations", completion_window="24h")
    assert (refused.value.body["param"], refused.value.body["code"]) == ("endpoint", "unsupported_endpoint")
    with pytest.raises(openai.BadRequestError) as other:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    assert other.value.body["param"] == "line[1].url"
    assert table_count(gw, "batches") == 0 and table_count(gw, "batch_lines") == 0


def test_a_line_for_an_unknown_model_is_refused_at_creation(gw):
    client = gw.client()
    uploaded = upload(client, [line("a"), line("b", model="no-such-model")])
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    body = refused.value.body
    assert (body["param"], body["code"]) == ("line[2].body.model", "model_not_found")
    assert "'no-such-model' does not exist" in body["message"]
    assert table_count(gw, "batches") == 0 and table_count(gw, "batch_lines") == 0
    assert client.batches.list().data == []


def test_a_window_the_schedule_cannot_meet_is_refused(gw):
    client = gw.client()
    uploaded = upload(client, [line("a"), line("b"), line("c")])  # 3 x 1800s at concurrency 1: 1h30m
    for window, says in (("1h", "too short for 3 lines"), ("200h", "batch.max_window_h"),
                         ("tomorrow", "whole number of hours")):
        with pytest.raises(openai.BadRequestError) as refused:
            client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window=window)  # type: ignore[arg-type]
        assert refused.value.body["param"] == "completion_window", window
        assert says in refused.value.body["message"], refused.value.body
    assert table_count(gw, "batches") == 0


def test_a_file_of_another_key_does_not_exist_for_this_one(gw):
    _, secret = create_key(gw)
    mine = upload(gw.client(secret), [line("a")])
    _, other = create_key(gw)
    with pytest.raises(openai.NotFoundError):
        gw.client(other).files.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        gw.client(other).batches.create(input_file_id=mine.id, endpoint="/v1/chat/completions",
                                        completion_window="24h")


def test_a_batch_over_the_budget_is_refused_and_holds_nothing(gw):
    key_id, secret = create_key(gw, daily_usd="0.001")
    client = gw.client(secret)
    uploaded = upload(client, [line("a", max_tokens=5000), line("b", max_tokens=5000)])
    with pytest.raises(openai.RateLimitError) as refused:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    body = refused.value.body
    assert body["code"] == "budget_exceeded" and "daily budget" in body["message"]
    assert "limit $0.001" in body["message"]
    assert table_count(gw, "batches") == 0
    small = upload(client, [line("c", max_tokens=10)])
    made = client.batches.create(input_file_id=small.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert made.status == "validating"
    budgets = httpx.get(f"{gw.url}/admin/budgets", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["data"]
    (daily,) = [b for b in budgets if b["id"] == key_id and b["window"] == "daily"]
    assert Decimal(daily["reserved_usd"]) >= Decimal(made.model_extra["worst_case_usd"]) > 0

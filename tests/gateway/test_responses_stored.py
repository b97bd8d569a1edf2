"""Stored Responses through `tollway serve` with the real OpenAI SDK: `store`, `previous_response_id`,
`GET` and `DELETE /v1/responses/{id}`, each request with its row; another key's response is not found."""

from __future__ import annotations

import sqlite3
import time

import openai
import pytest

from tests.accounting.support import ENV, Admin, budget_config

pytestmark = pytest.mark.slow


@pytest.fixture
def gw(emulator, gateway_factory):
    return gateway_factory(budget_config(emulator), env=ENV)


@pytest.fixture
def two_clients(gw):
    admin = Admin(gw)
    return [gw.client(admin.create_key(name=name)[1]) for name in ("alice", "bob")]


def test_previous_response_id_continues_the_stored_conversation(gw, two_clients):
    alice, _ = two_clients
    first = alice.responses.with_raw_response.create(model="chat", input="My name is Ada.",
                                                     extra_headers={"x-request-id": "s-1"}).parse()
    follow = alice.responses.with_raw_response.create(model="chat", input="What is my name?",
                                                      previous_response_id=first.id,
                                                      extra_headers={"x-request-id": "s-2"}).parse()
    assert follow.output_text and follow.id != first.id
    one, two = gw.row("s-1"), gw.row("s-2")
    assert two["prompt_tokens"] > one["prompt_tokens"], "the upstream was sent the earlier turn too"
    with alice.responses.stream(model="chat", input="And again?", previous_response_id=follow.id) as stream:
        streamed = stream.get_final_response()
    third = alice.responses.retrieve(streamed.id)
    assert third.output_text == streamed.output_text and third.previous_response_id == follow.id


def test_get_and_delete_serve_the_stored_response_to_its_own_key_only(gw, two_clients):
    alice, bob = two_clients
    made = alice.responses.create(model="chat", input="Hello there")
    got = alice.responses.with_raw_response.retrieve(made.id, extra_headers={"x-request-id": "g-1"}).parse()
    assert (got.id, got.output_text, got.usage.output_tokens) == (made.id, made.output_text, made.usage.output_tokens)
    with pytest.raises(openai.NotFoundError) as other:
        bob.responses.retrieve(made.id, extra_headers={"x-request-id": "g-2"})
    assert other.value.body["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="chat", input="Hi", previous_response_id=made.id,
                             extra_headers={"x-request-id": "g-3"})
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(made.id)
    alice.responses.delete(made.id, extra_headers={"x-request-id": "g-4"})
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)
    rows = {rid: gw.row(rid) for rid in ("g-1", "g-2", "g-3", "g-4")}
    assert (rows["g-1"]["endpoint"], rows["g-1"]["status"], rows["g-1"]["http_status"]) == ("responses.get", "ok", 200)
    assert rows["g-1"]["cost_usd"] in ("0", "0.0") and rows["g-1"]["key_id"] == rows["g-4"]["key_id"]
    assert (rows["g-2"]["http_status"], rows["g-2"]["status"]) == (404, "client_error")
    assert (rows["g-3"]["endpoint"], rows["g-3"]["http_status"]) == ("responses", 404)
    assert (rows["g-4"]["endpoint"], rows["g-4"]["http_status"]) == ("responses.delete", 200)


def test_store_false_keeps_nothing_and_stored_ones_reach_the_ledger_database(gw, two_clients):
    alice, _ = two_clients
    unstored = alice.responses.create(model="chat", input="Hello there", store=False)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(unstored.id)
    stored = alice.responses.create(model="chat", input="Hello there")
    deadline = time.monotonic() + 10
    while True:
        conn = sqlite3.connect(f"file:{gw.ledger}?mode=ro", uri=True)
        ids = {row[0] for row in conn.execute("SELECT id FROM stored_responses")}
        conn.close()
        if stored.id in ids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stored.id in ids and unstored.id not in ids


def test_a_missing_or_malformed_id_is_an_openai_shaped_error(gw, two_clients):
    alice, _ = two_clients
    with pytest.raises(openai.NotFoundError) as missing:
        alice.responses.retrieve("resp_nope")
    assert missing.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as bad:
        alice.responses.create(model="chat", input="hi", store="yes")  # type: ignore[arg-type]
    assert bad.value.body["param"] == "store"
    with pytest.raises(openai.AuthenticationError):
        gw.client("tw_wrong").responses.retrieve("resp_x")


def test_replicas_on_one_postgresql_ledger_share_stored_responses(emulator, gateway_factory, postgres_url):
    config = budget_config(emulator)
    first, second = (gateway_factory(config, env=ENV, extra_args=("--database-url", postgres_url)) for _ in range(2))
    secret = Admin(first).create_key(name="shared")[1]
    made = first.client(secret).responses.create(model="chat", input="My name is Ada.")
    deadline = time.monotonic() + 10
    while True:  # the first replica writes it off the request path
        try:
            got = second.client(secret).responses.retrieve(made.id)
            break
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert got.output_text == made.output_text
    follow = second.client(secret).responses.create(model="chat", input="What is my name?",
                                                    previous_response_id=made.id)
    assert follow.output_text

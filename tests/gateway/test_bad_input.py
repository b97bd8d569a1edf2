"""Every bad input and every all-failed outcome: the status and message a user sees, and its ledger row."""

import httpx
import openai
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config

pytestmark = pytest.mark.slow

CLIENT_KEY = {"TOLLWAY_TEST_CLIENT_KEY": "client-key"}


@pytest.fixture
def gw(emulator_factory, gateway_factory):
    emu = emulator_factory({})
    config = emulator_config(emu, server={"api_keys_env": ["TOLLWAY_TEST_CLIENT_KEY"], "max_body_bytes": 4000})
    return gateway_factory(config, env={**PROVIDER_KEYS, **CLIENT_KEY})


def error_of(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


def test_malformed_json_is_400_and_recorded(gw):
    response = httpx.post(f"{gw.base_url}/chat/completions", content=b'{"model": "chat", "messages": [',
                          headers={"Authorization": "Bearer client-key", "Content-Type": "application/json",
                                   "x-request-id": "bad-json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json"
    assert error["message"].startswith("Request body is not valid JSON")
    row = gw.row("bad-json")
    assert (row["status"], row["http_status"], row["cost_usd"]) == ("client_error", 400, "0")


def test_schema_error_names_the_field(gw):
    with pytest.raises(openai.BadRequestError) as err:
        gw.client().chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}], max_tokens=0)
    assert error_of(err.value)["message"] == "'max_tokens' must be a positive integer, got 0."
    assert error_of(err.value)["param"] == "max_tokens"


def test_bad_key_is_401(gw):
    with pytest.raises(openai.AuthenticationError) as err:
        gw.client(api_key="wrong").chat.completions.create(**chat())
    assert "Invalid or missing API key" in error_of(err.value)["message"]
    assert gw.rows(wait_for=1)[-1]["http_status"] == 401


def test_unknown_model_is_404_listing_models(gw):
    with pytest.raises(openai.NotFoundError) as err:
        gw.client().chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    message = error_of(err.value)["message"]
    assert message == "The model 'gpt-9' does not exist on this gateway. Available models: chat, gpt-4o-mini."
    assert error_of(err.value)["code"] == "model_not_found"


def test_body_over_limit_is_413(gw):
    with pytest.raises(openai.APIStatusError) as err:
        gw.client().chat.completions.create(**chat("x" * 5000))
    assert err.value.status_code == 413
    assert "larger than the limit of 4000 bytes" in error_of(err.value)["message"]


def test_every_request_left_a_row(gw):
    client = gw.client()
    outcomes = 0
    for request in (dict(model="gpt-9", messages=[{"role": "user", "content": "x"}]), chat(), chat("y" * 5000)):
        try:
            client.chat.completions.create(**request)
        except openai.APIStatusError:
            pass
        outcomes += 1
    rows = gw.rows(wait_for=outcomes)
    assert sorted(r["http_status"] for r in rows) == [200, 404, 413]


@pytest.mark.parametrize("fault, status, exc_type, code", [
    ({"kind": "rate_limit", "retry_after_s": 30}, 429, openai.RateLimitError, "rate_limited"),
    ({"kind": "server_error", "status": 500}, 502, openai.InternalServerError, "all_deployments_failed"),
    ({"kind": "insufficient_balance"}, 503, openai.InternalServerError, "no_deployment_available"),
    ({"kind": "hang"}, 504, openai.InternalServerError, "upstream_timeout"),
])
def test_when_every_deployment_fails(emulator_factory, gateway_factory, fault, status, exc_type, code):
    emu = emulator_factory({"models": {"deepseek-flash": {"faults": [fault]}, "qwen3.5-plus": {"faults": [fault]}}})
    gw = gateway_factory(emulator_config(emu, timeouts={"connect_s": 1, "first_byte_s": 0.5, "between_chunks_s": 0.5,
                                                        "response_s": 0.5}), env=PROVIDER_KEYS)
    with pytest.raises(exc_type) as err:
        gw.client().chat.completions.create(**chat(), extra_headers={"x-request-id": f"fail-{status}"})
    error = error_of(err.value)
    assert err.value.status_code == status and error["code"] == code
    assert "ds-flash (deepseek)" in error["message"] and "qwen-plus (qwen)" in error["message"]
    if status == 429:
        assert err.value.response.headers["Retry-After"] == "30"
    row = gw.row(f"fail-{status}")
    assert row["status"] == "error" and row["http_status"] == status and row["deployment"] == ""
    assert {a["deployment"] for a in row["attempts"]} == {"ds-flash", "qwen-plus"}

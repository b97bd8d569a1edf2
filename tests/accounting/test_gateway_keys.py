"""Virtual keys, limits and budgets on one gateway with the defaults (SQLite keys, in-process counters),
through real processes: `tollway serve`, `tollway keys`, the emulator and the official openai SDK."""

from __future__ import annotations

import json
import subprocess
from contextlib import ExitStack
from decimal import Decimal

import httpx
import openai
import pytest

from tests.accounting.support import ADMIN_KEY, ENV, Admin, budget_config, request_cost, start_gateway, wait_for
from tests.gateway.support import chat
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow


def keys_cli(gw, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "keys", "--ledger", str(gw.ledger), *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def shared(emulator_session, tmp_path_factory):
    """One gateway for the tests that each make their own key (they cannot see each other's)."""
    config = budget_config(emulator_session)
    config["deployments"]["pro"] = {"provider": "deepseek", "model": "deepseek-v4-pro", "price": {"input": "1", "output": "1"}}
    config["route_groups"]["pro"] = {"deployments": ["pro"]}
    with ExitStack() as stack:
        yield start_gateway(stack, tmp_path_factory.mktemp("keys"), config)


@pytest.fixture
def setup(shared, emulator):
    return emulator, shared


def test_once_a_key_exists_every_request_needs_one_and_its_secret_works(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    assert gw.client(api_key="anything").chat.completions.create(**chat()).choices, "no keys yet: open as before"
    created = keys_cli(gw, "create", "--name", "ci-bot", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    secret = key["secret"]
    assert key["name"] == "ci-bot" and secret.startswith(f"tw_{key['id']}_")
    listed = keys_cli(gw, "list", "--json")
    assert secret not in listed.stdout and key["id"] in listed.stdout, "the secret is shown once, at creation"

    def refused_without_key() -> bool:
        try:
            gw.client(api_key="anything").chat.completions.create(**chat())
        except openai.AuthenticationError as exc:
            return exc.body["code"] == "invalid_api_key"
        return False

    wait_for(refused_without_key, timeout=2)
    raw = gw.client(api_key=secret).chat.completions.with_raw_response.create(**chat(),
                                                                             extra_headers={"x-request-id": "k-1"})
    assert raw.parse().choices[0].message.content
    assert gw.row("k-1")["key_id"] == key["id"]
    forged = secret[:-4] + ("0000" if not secret.endswith("0000") else "1111")
    with pytest.raises(openai.AuthenticationError):
        gw.client(api_key=forged).chat.completions.create(**chat())


def test_a_key_may_use_only_its_models(setup) -> None:
    _, gw = setup
    _, secret = Admin(gw).create_key(models=["chat"])
    client = gw.client(api_key=secret)
    assert client.chat.completions.create(**{**chat(), "model": "gpt-4o-mini"}).choices, "an alias of an allowed group"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(**{**chat(), "model": "pro"})
    assert refused.value.body["code"] == "model_not_allowed"
    assert "may not use model 'pro'" in refused.value.body["message"] and "chat" in refused.value.body["message"]


def test_a_spent_budget_refuses_with_what_is_spent_and_when_it_resets(setup) -> None:
    _, gw = setup
    admin = Admin(gw)
    key_id, secret = admin.create_key(name="small", daily_usd="0.2")
    client = gw.client(api_key=secret)
    costs = []
    for n in range(2):
        raw = client.chat.completions.with_raw_response.create(**chat(), max_tokens=20)
        costs.append(Decimal(raw.headers["x-tollway-cost-usd"]))
    assert costs == [request_cost(7, 16)] * 2 == [Decimal("0.039")] * 2
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.with_raw_response.create(**chat(), max_tokens=20, extra_headers={"x-request-id": "b-3"})
    body, headers = refused.value.body, refused.value.response.headers
    assert body["code"] == "budget_exceeded" and headers["x-should-retry"] == "false"
    message = body["message"]
    assert f"the daily budget of key 'small' ({key_id}) is $0.20; $0.078 is spent" in message
    assert "this request may cost up to $0.12" in message and "It resets at " in message and "T00:00:00Z" in message
    row = gw.row("b-3")
    assert (row["http_status"], row["status"], row["cost_usd"]) == (429, "client_error", "0")
    status = admin.settled_budget(key_id)
    assert (status["limit_usd"], status["spent_usd"], status["window"]) == ("0.2", "0.078", "daily")
    assert status["resets_at"].endswith("T00:00:00Z")


def test_streamed_spend_counts_like_any_other(setup) -> None:
    _, gw = setup
    admin = Admin(gw)
    key_id, secret = admin.create_key(daily_usd="5")
    stream = gw.client(api_key=secret).chat.completions.create(**chat(), max_tokens=20, stream=True,
                                                              extra_headers={"x-request-id": "s-1"})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    row = gw.row("s-1")
    assert Decimal(row["cost_usd"]) == request_cost(7, 16)
    status = admin.settled_budget(key_id)
    assert Decimal(status["spent_usd"]) == Decimal(row["cost_usd"]) > 0


def test_requests_per_minute_are_limited_with_a_retry_after(setup) -> None:
    _, gw = setup
    key_id, secret = Admin(gw).create_key(name="paced", rpm=3)
    client = gw.client(api_key=secret)
    for _ in range(3):
        client.chat.completions.create(**chat())
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**chat())
    assert refused.value.body["code"] == "rate_limited"
    assert f"key 'paced' ({key_id}) allows 3 requests per minute" in refused.value.body["message"]
    assert 50 <= int(refused.value.response.headers["Retry-After"]) <= 60


def test_admin_api_manages_keys_and_revocation_is_immediate_on_this_replica(setup) -> None:
    _, gw = setup
    for token in (None, "wrong-key"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        reply = httpx.get(f"{gw.url}/admin/keys", headers=headers)
        assert (reply.status_code, reply.json()["error"]["code"]) == (401, "invalid_admin_key")
    admin = Admin(gw)
    key_id, secret = admin.create_key(name="temp", rpm=50, residency=["cn", "sg"])
    listed = admin.http.get("/admin/keys").json()["data"]
    assert key_id in [k["id"] for k in listed]
    assert not any({"secret", "hash", "salt"} & set(k) for k in listed)
    patched = admin.http.patch(f"/admin/keys/{key_id}", json={"rpm": None, "monthly_usd": "30"}).json()
    assert (patched["rpm"], patched["monthly_usd"], patched["residency"]) == (None, "30", ["cn", "sg"])
    bad = admin.http.patch(f"/admin/keys/{key_id}", json={"tpm": -5})
    assert bad.status_code == 400 and "tpm: expected a whole number of at least 1, got -5" in bad.text
    assert admin.http.get("/admin/keys/nope").status_code == 404
    client = gw.client(api_key=secret)
    assert client.chat.completions.create(**chat()).choices
    assert admin.revoke(key_id)["revoked_at"]
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(**chat())
    assert refused.value.body["code"] == "key_revoked"
    assert ADMIN_KEY not in gw.log_text() and secret not in gw.log_text()


def test_soft_threshold_raises_one_alert_event(setup) -> None:
    _, gw = setup
    admin = Admin(gw)
    key_id, secret = admin.create_key(daily_usd="0.2")           # soft threshold: 80%, $0.16
    client = gw.client(api_key=secret)
    client.chat.completions.create(**chat(), max_tokens=20)     # holds about $0.125, costs $0.039
    admin.settled_budget(key_id)
    client.chat.completions.create(**chat(), max_tokens=20)     # $0.039 spent + its hold: past $0.16
    admin.settled_budget(key_id)
    with pytest.raises(openai.RateLimitError):                  # $0.078 + a $0.125 hold > $0.20
        client.chat.completions.create(**chat(), max_tokens=20)
    client.chat.completions.create(**chat(), max_tokens=5)      # a smaller hold still fits
    alerts = [e for e in admin.events() if e["event"] == "budget_soft_threshold" and e["id"] == key_id]
    assert len(alerts) == 1 and alerts[0]["window"] == "daily" and alerts[0]["limit_usd"] == "0.2"


def test_admin_api_is_off_without_an_admin_key(emulator, gateway_factory) -> None:
    from tests.gateway.support import PROVIDER_KEYS, emulator_config

    gw = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS)
    reply = httpx.get(f"{gw.url}/admin/keys", headers={"Authorization": "Bearer anything"})
    assert reply.status_code == 404 and "server.admin_key_env" in reply.json()["error"]["message"]


def test_paced_deployments_are_skipped_when_full_and_refused_when_all_are(emulator, gateway_factory) -> None:
    config = budget_config(emulator, limits={"deployments": {"ds-flash": {"rpm": 2}, "qwen-plus": {"rpm": 1}}})
    gw = gateway_factory(config, env=ENV)
    client = gw.client()
    served = [client.chat.completions.with_raw_response.create(**chat()).headers["x-tollway-deployment"]
              for _ in range(3)]
    assert served == ["ds-flash", "ds-flash", "qwen-plus"], "the provider never sees more than its pace"
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**chat())
    assert refused.value.body["code"] == "rate_limited"
    assert "configured rate limit (ds-flash, qwen-plus: limits.deployments)" in refused.value.body["message"]
    assert [r["model"] for r in emulator.requests()] == ["deepseek-flash", "deepseek-flash", "qwen3.5-plus"]


def test_past_the_soft_threshold_a_key_is_browned_out_to_the_cheaper_group(emulator, gateway_factory) -> None:
    config = budget_config(emulator, budgets={"brownout": {"chat": "cheap"}})
    config["route_groups"]["cheap"] = {"deployments": ["qwen-plus"]}
    gw = gateway_factory(config, env=ENV)
    admin = Admin(gw)
    key_id, secret = admin.create_key(daily_usd="0.2")
    _, other_secret = admin.create_key(daily_usd="5")
    client = gw.client(api_key=secret)
    first = client.chat.completions.with_raw_response.create(**chat(), max_tokens=20)
    admin.settled_budget(key_id)
    second = client.chat.completions.with_raw_response.create(**chat(), max_tokens=20)  # crosses 80%
    third = client.chat.completions.with_raw_response.create(**chat(), max_tokens=5)
    assert [r.headers["x-tollway-deployment"] for r in (first, second, third)] == ["ds-flash", "ds-flash", "qwen-plus"]
    untouched = gw.client(api_key=other_secret).chat.completions.with_raw_response.create(**chat(), max_tokens=20)
    assert untouched.headers["x-tollway-deployment"] == "ds-flash", "only the key past its threshold"
    brownouts = [e for e in admin.events() if e["event"] == "brownout"]
    assert [(e["scope"], e["id"]) for e in brownouts] == [("key", key_id)]

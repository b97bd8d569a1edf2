"""A small budget stays usable: a refusal of a request whose worst case does not fit says which max_tokens
would, and a key's default_max_tokens caps what is held (and sent) for requests that set none. Real
processes: `tollway serve`, `tollway keys`, the emulator and the official openai SDK."""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal

import openai
import pytest

from tests.accounting.support import ENV, Admin, budget_config
from tests.gateway.support import chat
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow

# DeepSeek-like prices: a request without max_tokens is held for 4096 output tokens, about $0.0045,
# more than a whole $0.001 daily budget.
PRICE = {"input": "0.27", "output": "1.10"}


@pytest.fixture
def gw(emulator, gateway_factory):
    config = budget_config(emulator)
    for dep in config["deployments"].values():
        dep["price"] = dict(PRICE)
    return gateway_factory(config, env=ENV)


def advised_max_tokens(message: str) -> int:
    found = re.search(r"set max_tokens to at most (\d+) and it fits now", message)
    assert found, message
    return int(found.group(1))


def test_a_tiny_budget_names_the_max_tokens_that_fits_and_that_passes(gw, emulator) -> None:
    admin = Admin(gw)
    key_id, secret = admin.create_key(name="tiny", daily_usd="0.001")
    client = gw.client(api_key=secret)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(**chat())
    message = refused.value.body["message"]
    assert refused.value.body["code"] == "budget_exceeded"
    assert "$0.001; $0.00 is spent" in message and "Without max_tokens the longest answer the model can give is held" \
        in message
    largest = advised_max_tokens(message)
    assert 0 < largest < 4096
    # the worst case of that many output tokens at the dearest rate fits what was left, $0.001
    assert largest * Decimal(PRICE["output"]) / 10**6 < Decimal("0.001")
    answer = client.chat.completions.with_raw_response.create(**chat(), max_tokens=largest,
                                                              extra_headers={"x-request-id": "fits-1"})
    assert answer.parse().choices[0].message.content
    row = gw.row("fits-1")
    assert row["status"] == "ok" and Decimal(row["cost_usd"]) > 0
    spent = Decimal(admin.settled_budget(key_id)["spent_usd"])
    assert spent == Decimal(row["cost_usd"]) <= Decimal("0.001")
    with pytest.raises(openai.RateLimitError) as again:  # the room left is smaller: so is the advice
        client.chat.completions.create(**chat(), max_tokens=largest)
    assert "Lower max_tokens to at most" in again.value.body["message"]
    assert Decimal(admin.settled_budget(key_id)["spent_usd"]) == spent <= Decimal("0.001")


def test_a_key_default_max_tokens_is_held_and_sent_upstream(gw, emulator) -> None:
    admin = Admin(gw)
    key_id, secret = admin.create_key(name="capped", daily_usd="0.001", default_max_tokens=300)
    assert admin.http.get(f"/admin/keys/{key_id}").json()["default_max_tokens"] == 300
    emulator.reset()
    client = gw.client(api_key=secret)
    raw = client.chat.completions.with_raw_response.create(**chat(), extra_headers={"x-request-id": "capped-1"})
    assert raw.parse().choices[0].message.content
    sent = [entry["body"] for entry in emulator.requests() if entry["path"].endswith("/chat/completions")]
    assert [body.get("max_tokens") for body in sent] == [300], "the upstream got the key's max_tokens"
    asked = client.chat.completions.with_raw_response.create(**chat(), max_tokens=7,
                                                             extra_headers={"x-request-id": "capped-2"})
    assert asked.parse().choices
    sent = [entry["body"] for entry in emulator.requests() if entry["path"].endswith("/chat/completions")]
    assert sent[-1]["max_tokens"] == 7, "a client's own max_tokens is left alone"
    spent = Decimal(admin.settled_budget(key_id)["spent_usd"])
    assert spent == Decimal(gw.row("capped-1")["cost_usd"]) + Decimal(gw.row("capped-2")["cost_usd"]) <= Decimal("0.001")


def test_keys_command_sets_and_clears_default_max_tokens(gw) -> None:
    def keys(*args: str) -> dict:
        result = subprocess.run([*TOLLWAY, "keys", "--ledger", str(gw.ledger), *args, "--json"], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    created = keys("create", "--name", "cli", "--default-max-tokens", "256")
    assert created["default_max_tokens"] == 256
    assert keys("update", created["id"], "--default-max-tokens", "none")["default_max_tokens"] is None
    bad = subprocess.run([*TOLLWAY, "keys", "--ledger", str(gw.ledger), "update", created["id"],
                          "--default-max-tokens", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--default-max-tokens: expected a whole number of at least 1, got '0'" in bad.stderr


def test_the_admin_api_rejects_a_bad_default_max_tokens(gw) -> None:
    reply = Admin(gw).http.post("/admin/keys", json={"name": "x", "default_max_tokens": -3})
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "default_max_tokens: expected a whole number of at least 1, got -3"

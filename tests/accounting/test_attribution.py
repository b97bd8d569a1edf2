"""Spend attribution end to end: requests with a `user` and tags through a real gateway with virtual keys,
then `tollway usage --by ...` and its filters give the ledger's exact sums."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal

import httpx
import pytest

from tests.accounting.support import ENV, budget_config, wait_for
from tests.gateway.support import chat
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow


def cli(gw, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([*TOLLWAY, *args], capture_output=True, text=True, timeout=60, env=env)


def grouped(gw, *args: str) -> dict:
    result = cli(gw, "usage", "--ledger", str(gw.ledger), "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cost(rows: list[dict]) -> Decimal:
    return sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))


def test_usage_groups_and_filters_by_key_team_user_and_tag(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    secrets = {}
    for name, team in (("a", "red"), ("b", "blue")):
        made = cli(gw, "keys", "--ledger", str(gw.ledger), "create", "--name", name, "--team", team, "--json")
        assert made.returncode == 0, made.stderr
        secrets[name] = json.loads(made.stdout)
    plan = [("a", "alice", "env:prod,batch", None), ("a", "bob", "env:dev", {"ticket": "T-1"}),
            ("b", "alice", "", {"env": "prod"}), ("b", None, "env:prod", None), ("a", "alice", "", None)]
    for i, (key, user, header, metadata) in enumerate(plan):
        body = chat(f"question {i}", **({"user": user} if user else {}), **({"metadata": metadata} if metadata else {}))
        headers = {"authorization": f"Bearer {secrets[key]['secret']}", "x-request-id": f"att-{i}"}
        if header:
            headers["x-tollway-tags"] = header
        reply = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
    rows = gw.rows(wait_for=len(plan))
    assert [r["end_user"] for r in rows] == ["alice", "bob", "alice", "", "alice"]
    assert json.loads(gw.row("att-0")["tags"]) == ["batch", "env:prod"]
    assert json.loads(gw.row("att-1")["tags"]) == ["env:dev", "ticket:T-1"], "header and metadata together"
    assert json.loads(gw.row("att-2")["tags"]) == ["env:prod"]

    by_user = {line["group"]: line for line in grouped(gw, "--by", "user")["lines"]}
    for user in ("alice", "bob", ""):
        mine = [r for r in rows if r["end_user"] == user]
        assert (by_user[user]["requests"], Decimal(by_user[user]["cost_usd"])) == (len(mine), cost(mine))
    by_tag = grouped(gw, "--by", "tag")
    prod = [r for r in rows if "env:prod" in json.loads(r["tags"])]
    tag_lines = {line["group"]: line for line in by_tag["lines"]}
    assert Decimal(tag_lines["env:prod"]["cost_usd"]) == cost(prod) and tag_lines["env:prod"]["requests"] == 3
    assert Decimal(by_tag["total_cost_usd"]) == cost(rows) > 0, "the total counts each request once"
    by_team = {line["group"]: line for line in grouped(gw, "--by", "team")["lines"]}
    key_of = {s["id"]: name for name, s in secrets.items()}
    red = [r for r in rows if key_of[r["key_id"]] == "a"]
    assert Decimal(by_team["red"]["cost_usd"]) == cost(red) and by_team["red"]["requests"] == 3
    only = grouped(gw, "--by", "key", "--user", "alice", "--tag", "env:prod")
    chosen = [r for r in rows if r["end_user"] == "alice" and "env:prod" in json.loads(r["tags"])]
    assert Decimal(only["total_cost_usd"]) == cost(chosen) and only["total"]["requests"] == 2
    assert {line["group"] for line in only["lines"]} == {secrets["a"]["id"], secrets["b"]["id"]}
    one_key = grouped(gw, "--key", secrets["b"]["id"])
    assert Decimal(one_key["total_cost_usd"]) == cost([r for r in rows if r["key_id"] == secrets["b"]["id"]])
    table = cli(gw, "usage", "--ledger", str(gw.ledger), "--by", "user")
    assert table.returncode == 0 and "alice" in table.stdout and "total" in table.stdout

    report = cli(gw, "report", "--ledger", str(gw.ledger), "--json", "--by", "tag", "--user", "alice")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    alice = [r for r in rows if r["end_user"] == "alice"]
    lines = {line["group"]: line for line in data["lines"]}
    assert data["by"] == "tag" and set(lines) == {"env:prod", "batch", ""}
    assert Decimal(lines["env:prod"]["cost_usd"]) == cost([r for r in alice if "env:prod" in json.loads(r["tags"])])
    assert (data["total"]["requests"], Decimal(data["total"]["cost_usd"])) == (3, cost(alice))
    printed = cli(gw, "report", "--ledger", str(gw.ledger), "--by", "key", "--tag", "env:prod")
    assert printed.returncode == 0 and secrets["a"]["id"] in printed.stdout, printed.stderr


BAD = [("env:prod,bad tag", None, None, "invalid_tags", "characters outside"),
       ("x" * 65, None, None, "invalid_tags", "longer than 64"),
       (",".join(f"t{i}" for i in range(17)), None, None, "too_many_tags", "At most 16 tags"),
       (None, {"n": 5}, None, "invalid_tags", "metadata['n'] must be a string"),
       (None, ["a"], None, "invalid_tags", "'metadata' must be an object"),
       (None, None, 42, "invalid_user", "'user' must be a string")]


def test_bad_attribution_is_a_400_naming_it_with_its_row(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    for i, (header, metadata, user, code, words) in enumerate(BAD):
        body = chat()
        if metadata is not None:
            body["metadata"] = metadata
        if user is not None:
            body["user"] = user
        headers = {"x-request-id": f"bad-{i}"} | ({"x-tollway-tags": header} if header else {})
        reply = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["code"] == code and words in error["message"], error
        assert error["type"] == "invalid_request_error"
        row = gw.row(f"bad-{i}")
        assert (row["status"], row["http_status"], row["cost_usd"]) == ("client_error", 400, "0")


def test_models_list_needs_a_key_once_keys_exist_and_shows_only_its_models(emulator, gateway_factory) -> None:
    config = budget_config(emulator)
    config["deployments"]["pro"] = {"provider": "deepseek", "model": "deepseek-v4-pro", "price": {"input": "1", "output": "1"}}
    config["route_groups"]["pro"] = {"deployments": ["pro"]}
    gw = gateway_factory(config, env=ENV)
    open_list = httpx.get(f"{gw.url}/v1/models", timeout=10)
    assert open_list.status_code == 200 and {"chat", "pro"} <= {m["id"] for m in open_list.json()["data"]}
    made = cli(gw, "keys", "--ledger", str(gw.ledger), "create", "--name", "narrow", "--models", "pro", "--json")
    wide = cli(gw, "keys", "--ledger", str(gw.ledger), "create", "--name", "wide", "--json")
    assert made.returncode == 0 and wide.returncode == 0, made.stderr + wide.stderr
    narrow_secret, wide_secret = json.loads(made.stdout)["secret"], json.loads(wide.stdout)["secret"]

    def listed(secret: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        return httpx.get(f"{gw.url}/v1/models", headers=headers, timeout=10)

    wait_for(lambda: listed(None).status_code == 401, timeout=5)  # the gateway sees new keys within its refresh
    anonymous = listed(None)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    assert listed("tw_nope_0000").status_code == 401
    assert [m["id"] for m in listed(narrow_secret).json()["data"]] == ["pro"]
    assert {m["id"] for m in listed(wide_secret).json()["data"]} == {m["id"] for m in open_list.json()["data"]}


def test_keys_list_shows_each_keys_spend_today_and_this_month(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator), env=ENV)
    made = cli(gw, "keys", "--ledger", str(gw.ledger), "create", "--name", "spender", "--json")
    idle = cli(gw, "keys", "--ledger", str(gw.ledger), "create", "--name", "idle", "--json")
    key, idle_key = json.loads(made.stdout), json.loads(idle.stdout)
    client = gw.client(api_key=key["secret"])
    wait_for(lambda: _served(client), timeout=5)
    client.chat.completions.create(**chat("again"))
    mine = lambda: [r for r in gw.rows() if r["key_id"] == key["id"]]  # noqa: E731
    rows = wait_for(lambda: len(mine()) == 2 and mine(), timeout=10)
    listed = cli(gw, "keys", "--ledger", str(gw.ledger), "list", "--json")
    assert listed.returncode == 0, listed.stderr
    by_id = {k["id"]: k for k in json.loads(listed.stdout)}
    assert Decimal(by_id[key["id"]]["spent_today_usd"]) == cost(rows) > 0
    assert Decimal(by_id[key["id"]]["spent_month_usd"]) == cost(rows)
    assert Decimal(by_id[idle_key["id"]]["spent_month_usd"]) == 0
    table = cli(gw, "keys", "--ledger", str(gw.ledger), "list")
    assert table.returncode == 0 and "spent today" in table.stdout


def _served(client) -> bool:
    try:
        return bool(client.chat.completions.create(**chat("first")).choices)
    except Exception:  # noqa: BLE001 - the gateway has not loaded the new key yet
        return False


def test_grouped_usage_on_postgresql_equals_its_rows(emulator, gateway_factory, postgres_url) -> None:
    from tests.accounting.support import wait_for_rows

    gw = gateway_factory({**budget_config(emulator), "database_url": postgres_url}, env=ENV)
    made = cli(gw, "keys", "--database-url", postgres_url, "create", "--name", "pg", "--team", "green", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    headers = {"authorization": f"Bearer {key['secret']}"}
    wait_for(lambda: httpx.post(f"{gw.url}/v1/chat/completions", json=chat("warm", user="carol"), headers=headers,
                                timeout=30).status_code == 200, timeout=5)
    for user, tags in (("carol", "env:prod"), ("dave", "env:prod,batch"), ("carol", "")):
        reply = httpx.post(f"{gw.url}/v1/chat/completions", json=chat(f"q {user}", user=user), timeout=30,
                           headers={**headers, **({"x-tollway-tags": tags} if tags else {})})
        assert reply.status_code == 200, reply.text
    rows = wait_for_rows(postgres_url, key["id"], 4)
    assert sorted(r["end_user"] for r in rows) == ["carol", "carol", "carol", "dave"]
    assert sorted(tuple(r["tags"]) for r in rows) == [(), (), ("batch", "env:prod"), ("env:prod",)], "JSONB lists"
    report = json.loads(cli(gw, "usage", "--database-url", postgres_url, "--json", "--by", "user").stdout)
    lines = {line["group"]: line for line in report["lines"]}
    for user in ("carol", "dave"):
        mine = [r for r in rows if r["end_user"] == user]
        assert (lines[user]["requests"], Decimal(lines[user]["cost_usd"])) == (len(mine), cost(mine))
    prod = json.loads(cli(gw, "usage", "--database-url", postgres_url, "--json", "--by", "team", "--tag",
                          "env:prod").stdout)
    chosen = [r for r in rows if "env:prod" in r["tags"]]
    assert [(line["group"], Decimal(line["cost_usd"])) for line in prod["lines"]] == [("green", cost(chosen))]

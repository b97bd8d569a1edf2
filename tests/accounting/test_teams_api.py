"""The admin API's teams and key budget lists on a real gateway: a team made over HTTP limits its keys at
once, bad entries get a 400 naming them with nothing changed, and config teams are changed only in the
config."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.accounting.support import ENV, Admin, budget_config
from tests.gateway.support import chat

pytestmark = pytest.mark.slow


def test_teams_over_http_limit_their_keys_and_refuse_bad_entries(emulator, gateway_factory) -> None:
    gw = gateway_factory(budget_config(emulator, teams={"ops": {"daily_usd": "9"}}), env=ENV)
    http = Admin(gw).http
    made = http.post("/admin/teams", json={"name": "ml", "budgets": [{"window": "day", "limit_usd": "0.001"}]})
    assert made.status_code == 201, made.text
    assert made.json()["budgets"] == [{"window": "day", "limit_usd": "0.001"}] and made.json()["source"] == "store"
    key_id, secret = Admin(gw).create_key(name="member", team="ml")
    with pytest.raises(openai.RateLimitError) as refused:
        gw.client(api_key=secret).chat.completions.create(**chat(), max_tokens=20)
    assert "the daily budget of team 'ml' is $0.001" in refused.value.body["message"]

    changed = http.patch("/admin/teams/ml", json={"budgets": [{"window": "week", "limit_usd": "50"}]})
    assert changed.status_code == 200 and changed.json()["budgets"] == [{"window": "week", "limit_usd": "50"}]
    gw.client(api_key=secret).chat.completions.create(**chat(), max_tokens=20)  # the new limit, at once
    listed = {t["name"]: t["source"] for t in http.get("/admin/teams").json()["data"]}
    assert listed == {"ml": "store", "ops": "config"}
    statuses = {(b["scope"], b["id"], b["window"]) for b in http.get("/admin/budgets").json()["data"]}
    assert {("team", "ml", "weekly"), ("team", "ops", "daily")} <= statuses

    for method, path, body, status, code, message in [
        ("post", "/admin/teams", {"name": "x", "budgets": [{"window": "fortnight", "limit_usd": "5"}]}, 400,
         "invalid_field", "budgets[0].window: unknown window 'fortnight'"),
        ("post", "/admin/teams", {"name": "x", "budgets": [{"window": "day", "limit_usd": "-2"}]}, 400,
         "invalid_field", "budgets[0].limit_usd: a budget must be more than $0"),
        ("post", "/admin/teams", {"name": "x", "budgets": [{"window": "day", "limit_usd": "2", "model": "gpt-9"}]},
         400, "invalid_field", "budgets[0].model: no model 'gpt-9' in the config"),
        ("post", "/admin/teams", {"name": "ml"}, 409, "team_exists", "team 'ml' already exists"),
        ("post", "/admin/teams", {"name": "ops"}, 409, "team_in_config", "defined in the config file (teams.ops)"),
        ("patch", "/admin/teams/ops", {"rpm": 5}, 409, "team_in_config", "change it there"),
        ("patch", "/admin/teams/nobody", {"rpm": 5}, 404, "team_not_found", "no stored team named 'nobody'"),
        ("patch", f"/admin/keys/{key_id}", {"budgets": [{"window": "day", "limit_usd": "1"},
                                                        {"window": "hour", "limit_usd": "0"}]},
         400, "invalid_field", "budgets[1].limit_usd: a budget must be more than $0"),
        ("patch", f"/admin/keys/{key_id}", {"budgets": [{"window": "year", "limit_usd": "1"}]}, 400,
         "invalid_field", "budgets[0].window: unknown window 'year'"),
    ]:
        reply = getattr(http, method)(path, json=body)
        assert reply.status_code == status, (path, body, reply.text)
        error = reply.json()["error"]
        assert error["code"] == code and message in error["message"], error
    assert [t["name"] for t in http.get("/admin/teams").json()["data"]] == ["ml", "ops"], "nothing half-applied"
    assert http.get(f"/admin/keys/{key_id}").json()["budgets"] == []

    per_user = http.patch(f"/admin/keys/{key_id}", json={"budgets": [{"window": "day", "limit_usd": "0.0001",
                                                                      "per_user": True}]})
    assert per_user.status_code == 200, per_user.text
    reply = httpx.post(f"{gw.url}/v1/chat/completions", json=chat(user="alice", max_tokens=20),
                       headers={"authorization": f"Bearer {secret}"}, timeout=30)
    assert reply.status_code == 429 and "end user 'alice' of key 'member'" in reply.json()["error"]["message"]
    assert http.delete("/admin/teams/ml").json() == {"name": "ml", "deleted": True}
    assert [t["name"] for t in http.get("/admin/teams").json()["data"]] == ["ops"]

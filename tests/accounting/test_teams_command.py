"""`tollway teams` and `tollway keys set-budget` through click's runner: teams from the config and the
store side by side, budget entries set whole, and bad entries refused with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tollway.accounting.keys.command import keys
from tollway.accounting.teams_command import teams

CONFIG = ("providers: {p: {kind: vllm, base_url: 'http://127.0.0.1:1/v1'}}\n"
          "deployments: {a: {provider: p, model: m}, b: {provider: p, model: n}}\n"
          "route_groups: {chat: {deployments: [a]}, cheap: {deployments: [b]}}\n"
          "teams: {ml: {daily_usd: '50'}}\n")


@pytest.fixture
def run(tmp_path: Path):
    config = tmp_path / "tollway.yaml"
    config.write_text(CONFIG)
    ledger = tmp_path / "ledger.db"

    def invoke(group, *args: str):
        return CliRunner().invoke(group, ["--config", str(config), "--ledger", str(ledger), *args])
    return invoke


def test_teams_are_created_changed_listed_and_deleted(run) -> None:
    created = run(teams, "create", "search", "day=20", "week=100@chat", "user:day=1", "--rpm", "300", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)[0]["budgets"] == [
        {"window": "day", "limit_usd": "20"}, {"window": "week", "limit_usd": "100", "model": "chat"},
        {"window": "day", "limit_usd": "1", "per_user": True}]
    changed = run(teams, "set-budget", "search", "month=500", "--tpm", "90000", "--json")
    assert changed.exit_code == 0, changed.output
    assert (json.loads(changed.output)[0]["budgets"], json.loads(changed.output)[0]["tpm"]) == (
        [{"window": "month", "limit_usd": "500"}], 90000)
    listed = json.loads(run(teams, "list", "--json").output)
    assert [(t["name"], t["source"], [e["window"] for e in t["budgets"]]) for t in listed] == [
        ("ml", "config", ["day"]), ("search", "store", ["month"])]
    assert "search" in run(teams, "list").output
    deleted = run(teams, "delete", "search")
    assert deleted.exit_code == 0 and [t["name"] for t in json.loads(run(teams, "list", "--json").output)] == ["ml"]


@pytest.mark.parametrize("args, message", [
    (("create", "ml", "day=5"), "team 'ml' is defined in the config file (teams.ml); change it there"),
    (("set-budget", "ml", "day=5"), "team 'ml' is defined in the config file"),
    (("create", "bad name", "day=5"), "team name 'bad name': use 1-64 letters"),
    (("create", "x", "fortnight=5"), "unknown window 'fortnight'; use hour, day, week or month"),
    (("create", "x", "day=0"), "a budget must be more than $0"),
    (("create", "x", "day=5@gpt-9"), "no model 'gpt-9' in the config (models: chat, cheap)"),
    (("set-budget", "nobody", "day=5"), "no stored team named 'nobody'"),
])
def test_team_mistakes_are_refused_by_name(run, args: tuple[str, ...], message: str) -> None:
    result = run(teams, *args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert json.loads(run(teams, "list", "--json").output)[1:] == [], "nothing was stored"


def test_keys_set_budget_replaces_the_list_and_refuses_a_bad_entry_whole(run) -> None:
    key = json.loads(run(keys, "create", "--name", "ci", "--budget-usd", "5/100", "--json").output)
    assert [e["window"] for e in key["budgets"]] == ["day", "month"]
    done = run(keys, "set-budget", key["id"], "hour=1", "day=2@cheap", "user:week=3", "--json")
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert (shown["daily_usd"], shown["monthly_usd"]) == (None, None)
    assert [e for e in shown["budgets"]] == [{"window": "hour", "limit_usd": "1"},
                                            {"window": "day", "limit_usd": "2", "model": "cheap"},
                                            {"window": "week", "limit_usd": "3", "per_user": True}]
    refused = run(keys, "set-budget", key["id"], "day=9", "month=-1")
    assert refused.exit_code == 2 and "budget 'month=-1': a budget must be more than $0" in refused.output
    [listed] = json.loads(run(keys, "list", "--json").output)
    assert listed["budgets"] == shown["budgets"], "nothing half-applied"
    assert run(keys, "set-budget", key["id"], "none").exit_code == 0
    assert json.loads(run(keys, "list", "--json").output)[0]["budgets"] == []

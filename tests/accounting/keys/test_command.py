"""`tollway keys` through click's runner: create shows the secret once, list/update/revoke, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from tollway.accounting.keys.command import keys


@pytest.fixture
def run(tmp_path: Path):
    config = tmp_path / "tollway.yaml"
    config.write_text("providers: {p: {kind: vllm, base_url: 'http://127.0.0.1:1/v1'}}\n"
                      "deployments: {a: {provider: p, model: m}}\nteams: {ml: {daily_usd: '50'}}\n")
    ledger = tmp_path / "ledger.db"

    def invoke(*args: str, extra: tuple[str, ...] = ()):
        return CliRunner().invoke(keys, ["--config", str(config), "--ledger", str(ledger), *extra, *args])
    return invoke


def test_create_prints_the_secret_once_and_list_never_does(run) -> None:
    created = run("create", "--name", "ci-bot", "--budget-usd", "5/100", "--rpm", "60", "--tpm", "90000",
                  "--models", "chat, gpt-4o-mini", "--residency", "eu", "--team", "ml", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert (key["daily_usd"], key["monthly_usd"], key["rpm"], key["tpm"]) == ("5", "100", 60, 90000)
    assert (key["models"], key["residency"], key["team"]) == (["chat", "gpt-4o-mini"], ["eu"], "ml")
    assert key["secret"].startswith(f"tw_{key['id']}_")
    listed = run("list", "--json")
    assert [k["id"] for k in json.loads(listed.output)] == [key["id"]]
    assert key["secret"] not in listed.output and "secret" not in listed.output
    table = run("create", "--name", "human")
    assert "secret: tw_" in table.output and "not kept and cannot be shown again" in table.output


def test_update_changes_only_what_is_given_and_none_clears(run) -> None:
    key = json.loads(run("create", "--name", "k", "--budget-usd", "5/100", "--rpm", "60", "--json").output)
    updated = json.loads(run("update", key["id"], "--budget-usd", "/none", "--tpm", "1000", "--json").output)
    assert (updated["daily_usd"], updated["monthly_usd"], updated["rpm"], updated["tpm"]) == ("5", None, 60, 1000)
    cleared = json.loads(run("update", key["id"], "--rpm", "none", "--models", "", "--json").output)
    assert (cleared["rpm"], cleared["models"], cleared["tpm"]) == (None, [], 1000)


def test_revoke_hides_the_key_from_list_unless_all_and_publishes_to_redis(run, redis_url) -> None:
    key = json.loads(run("create", "--name", "gone", "--json").output)
    revoked = run("revoke", key["id"], "--json", extra=("--redis-url", redis_url))
    assert revoked.exit_code == 0 and json.loads(revoked.output)["revoked_at"]
    assert json.loads(run("list", "--json").output) == []
    assert [k["id"] for k in json.loads(run("list", "--all", "--json").output)] == [key["id"]]
    with redis.Redis.from_url(redis_url) as client:
        assert client.sismember("tw:revoked", key["id"])


@pytest.mark.parametrize("args, message", [
    (("create", "--name", "x", "--budget-usd", "5"), "--budget-usd: expected DAILY/MONTHLY"),
    (("create", "--name", "x", "--budget-usd", "five/"), "--budget-usd (daily): expected a USD amount"),
    (("create", "--name", "x", "--rpm", "0"), "--rpm: expected a whole number of at least 1, got '0'"),
    (("create", "--name", "x", "--models", "a,,"), None),
    (("update", "nope", "--rpm", "5"), "no key with id 'nope'"),
    (("revoke", "nope"), "no key with id 'nope'"),
])
def test_mistakes_are_named(run, args: tuple[str, ...], message: str | None) -> None:
    result = run(*args)
    if message is None:
        assert result.exit_code == 0, "empty names in a list are ignored"
        return
    assert result.exit_code != 0 and message in result.output


def test_an_unknown_team_is_accepted_with_a_warning(run) -> None:
    result = run("create", "--name", "x", "--team", "nobody", "--json")
    assert result.exit_code == 0
    assert "team 'nobody' is not under `teams:`" in result.output and "known: ml" in result.output


def test_a_bad_database_url_is_refused_before_anything_runs(run) -> None:
    result = run("list", extra=("--database-url", "mysql://u:hunter2@db/x"))
    assert result.exit_code != 0 and "must start with postgresql://" in result.output
    assert "hunter2" not in result.output

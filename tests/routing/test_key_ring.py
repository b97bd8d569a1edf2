"""A provider's keys used in turn, each with its own breaker (routing/key_ring.py), and what the failover
walk does with a refused key (routing/walk.py), driven by scripted answers per key (no network)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tollway.config import Config
from tollway.core.errors import GatewayError
from tollway.gateway.reload import carry_breakers
from tollway.providers.failure import Failure, FailureKind
from tollway.providers.registry import DIALECTS
from tollway.routing.key_ring import KeyRing, fingerprint
from tollway.routing.table import RouteTable
from tollway.routing.walk import Walk
from tollway.upstream.calls import UpstreamFailure

SECRETS = {"KR_A": "sk-ring-secret-aaaa", "KR_B": "sk-ring-secret-bbbb", "KR_C": "sk-ring-secret-cccc"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ring(count: int = 3, open_s: float = 60.0, clock: Clock | None = None) -> KeyRing:
    built = KeyRing.build("ds", list(SECRETS.items())[:count], DIALECTS["deepseek"], open_s)
    if clock is not None:
        for key in built.keys:
            key.breaker._clock = clock
    return built


def refusal(kind: FailureKind = FailureKind.OUT_OF_FUNDS, status: int = 402) -> Failure:
    return Failure(kind, "Insufficient Balance", status)


def test_keys_are_taken_in_turn():
    keys = ring()
    assert [keys.pick().source for _ in range(7)] == ["KR_A", "KR_B", "KR_C", "KR_A", "KR_B", "KR_C", "KR_A"]
    assert [key.sent for key in keys.keys] == [3, 2, 2]


def test_a_key_is_named_by_a_fingerprint_that_does_not_give_it_back():
    keys = ring()
    first = keys.keys[0]
    assert first.label == hashlib.sha256(b"sk-ring-secret-aaaa").hexdigest()[:8] == fingerprint(first.secret)
    assert first.ledger_label == first.label, "several keys: rows name the key"
    assert ring(1).keys[0].ledger_label == "", "one key: rows stay as they were"
    assert "sk-ring" not in repr(first) and "sk-ring" not in repr(keys.keys)
    assert first.headers == {"Authorization": "Bearer sk-ring-secret-aaaa"}


@pytest.mark.parametrize("kind,status", [(FailureKind.OUT_OF_FUNDS, 402), (FailureKind.UPSTREAM_AUTH, 401),
                                         (FailureKind.UPSTREAM_AUTH, 403)])
def test_a_refused_key_is_skipped_until_its_cool_down_has_passed(kind, status):
    clock = Clock()
    keys = ring(open_s=60, clock=clock)
    first = keys.pick()
    assert keys.failed(first, refusal(kind, status)) is True
    assert [keys.pick().source for _ in range(4)] == ["KR_B", "KR_C", "KR_B", "KR_C"]
    assert first.refusal == f"{kind.value} {status}" and first.breaker.opened_count == 1
    clock.now += 59
    assert keys.pick().source == "KR_B"
    clock.now += 2
    assert [keys.pick().source for _ in range(3)] == ["KR_C", "KR_A", "KR_B"], "one probe after the cool-down"


def test_a_probe_that_answers_puts_the_key_back_and_one_that_is_refused_reopens_it():
    clock = Clock()
    keys = ring(2, open_s=10, clock=clock)
    a = keys.pick()
    keys.failed(a, refusal())
    clock.now += 11
    assert keys.pick().source == "KR_B", "the turn goes on"
    probe = keys.pick()
    assert probe is a and a.breaker.state == "half_open"
    assert keys.pick().source == "KR_B", "only one probe at a time"
    assert keys.pick().source == "KR_B"
    keys.failed(probe, refusal())
    assert a.breaker.state == "open" and a.breaker.opened_count == 2
    clock.now += 11
    probe = keys.pick()
    assert probe is a
    keys.answered(probe)
    assert a.breaker.state == "closed"
    assert [keys.pick().source for _ in range(4)] == ["KR_B", "KR_A", "KR_B", "KR_A"]


def test_transient_failures_and_cancels_leave_the_key_in_turn_and_free_its_probe():
    clock = Clock()
    keys = ring(2, open_s=10, clock=clock)
    a = keys.pick()
    assert keys.failed(a, Failure(FailureKind.SERVER, "boom", 503)) is False
    assert keys.failed(a, Failure(FailureKind.RATE_LIMITED, "slow down", 429)) is False
    assert a.breaker.state == "closed"
    keys.failed(a, refusal())
    clock.now += 11
    assert keys.pick().source == "KR_B"
    assert keys.pick() is a
    assert not a.breaker.available(), "its probe is out"
    keys.released(a)  # the attempt was cancelled: nothing learnt, the next request may probe
    assert a.breaker.available()


def test_with_every_key_held_off_nothing_is_picked_and_the_reason_names_labels_not_secrets():
    keys = ring(2)
    for _ in range(2):
        keys.failed(keys.pick(), refusal())
    assert keys.pick() is None and not keys.usable()
    reason = keys.held_off()
    assert reason.startswith("every API key of provider ds is held off")
    assert keys.keys[0].label in reason and "out_of_funds 402" in reason and "sk-ring" not in reason
    assert keys.exhausted().kind is FailureKind.UPSTREAM_AUTH


# --- the route table and reload ---------------------------------------------------------------------------


def config(envs: list[str], open_s: float = 60.0, group: list[str] | None = None) -> Config:
    return Config.model_validate({
        "retry": {"max_attempts": 4, "retries_per_deployment": 1, "backoff_base_s": 0, "backoff_max_s": 0},
        "breaker": {"key_open_s": open_s},
        "providers": {"ds": {"kind": "deepseek", "base_url": "http://127.0.0.1:1/v1", "api_key_envs": envs},
                      "qw": {"kind": "qwen", "base_url": "http://127.0.0.1:2/v1"}},
        "deployments": {"ds-a": {"provider": "ds", "model": "a"}, "ds-b": {"provider": "ds", "model": "b"},
                        "qw": {"provider": "qw", "model": "c"}},
        "route_groups": {"g": {"deployments": group or ["ds-a", "qw"]}},
    })


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def test_deployments_of_one_provider_share_its_ring(secrets):
    table = RouteTable(config(["KR_A", "KR_B"]))
    assert table.deployments["ds-a"].keys is table.deployments["ds-b"].keys is table.key_rings["ds"]
    assert table.deployments["qw"].keys is None, "a provider without a key has no ring"
    assert table.deployments["ds-a"].secrets() == ["sk-ring-secret-aaaa", "sk-ring-secret-bbbb"]
    assert RouteTable(config(["KR_A"]), resolve_secrets=False).key_rings == {}, "explain reads no key"


def test_a_reload_keeps_the_breakers_of_keys_still_listed_and_adds_new_keys_in_turn(secrets):
    old_config, new_config = config(["KR_A", "KR_B"]), config(["KR_C", "KR_A", "KR_B"])
    old = RouteTable(old_config)
    ring_before = old.key_rings["ds"]
    ring_before.failed(ring_before.pick(), refusal())  # KR_A held off
    new = RouteTable(new_config)
    carry_breakers(old_config, old, new_config, new)
    after = {key.source: key for key in new.key_rings["ds"].keys}
    assert after["KR_A"].breaker is ring_before.keys[0].breaker and after["KR_A"].breaker.state == "open"
    assert after["KR_B"].breaker is ring_before.keys[1].breaker
    assert after["KR_C"].breaker.state == "closed"
    assert [new.key_rings["ds"].pick().source for _ in range(4)] == ["KR_C", "KR_B", "KR_C", "KR_B"]
    assert new.deployments["ds-a"].breaker is old.deployments["ds-a"].breaker, "a rotated key is the same provider"


def test_a_changed_key_cool_down_starts_every_key_afresh(secrets):
    old_config, new_config = config(["KR_A", "KR_B"]), config(["KR_A", "KR_B"], open_s=5)
    old = RouteTable(old_config)
    old.key_rings["ds"].failed(old.key_rings["ds"].pick(), refusal())
    new = RouteTable(new_config)
    carry_breakers(old_config, old, new_config, new)
    assert all(key.breaker.state == "closed" for key in new.key_rings["ds"].keys)
    assert new.deployments["ds-a"].breaker is old.deployments["ds-a"].breaker


# --- the walk ----------------------------------------------------------------------------------------------


def walk_keys(table: RouteTable, answers: dict[str, list], max_attempts: int = 4):
    """Run a walk whose attempts take a key as calls.py does; `answers[source]` scripts each key's answers
    (a Failure is raised, "ok" answers; an exhausted script answers "ok")."""
    sent: list[str] = []

    async def attempt(dep):
        if dep.keys is None:
            sent.append(dep.name)
            return "ok"
        key = dep.keys.pick()
        if key is None:
            raise UpstreamFailure(dep.keys.exhausted())
        sent.append(f"{dep.name}/{key.source}")
        script = answers.get(key.source) or []
        outcome = script.pop(0) if script else "ok"
        if isinstance(outcome, Failure):
            raise UpstreamFailure(outcome, key, dep.keys.failed(key, outcome))
        dep.keys.answered(key)

        class Reply:
            pass
        reply = Reply()
        reply.key = key
        return reply

    async def main():
        walk = Walk(table_config.retry.model_copy(update={"max_attempts": max_attempts}),
                    asyncio.get_running_loop().time() + 5)
        try:
            dep, _ = await walk.run("g", table.groups["g"].deployments, attempt)
            return walk, dep.name
        except GatewayError as exc:
            return walk, exc

    table_config = config(["KR_A"])
    walk, result = asyncio.run(main())
    return walk, result, sent


def test_a_refused_key_is_retried_at_once_on_the_next_key_of_the_same_deployment(secrets):
    table = RouteTable(config(["KR_A", "KR_B", "KR_C"]))
    walk, result, sent = walk_keys(table, {"KR_A": [refusal()]})
    assert result == "ds-a" and sent == ["ds-a/KR_A", "ds-a/KR_B"]
    first, second = (a.to_ledger() for a in walk.attempts)
    labels = {key.source: key.label for key in table.key_rings["ds"].keys}
    assert first["outcome"] == "retry" and first["kind"] == "out_of_funds" and first["key"] == labels["KR_A"]
    assert second["outcome"] == "ok" and second["key"] == labels["KR_B"]
    assert table.deployments["ds-a"].breaker.state == "closed", "the key's fault, not the deployment's"
    assert walk.tries == 2


def test_key_switches_stay_within_the_attempt_budget(secrets):
    table = RouteTable(config(["KR_A", "KR_B", "KR_C"]))
    refused = {name: [refusal(FailureKind.UPSTREAM_AUTH, 401)] for name in SECRETS}
    walk, result, sent = walk_keys(table, refused, max_attempts=2)
    assert sent == ["ds-a/KR_A", "ds-a/KR_B"] and isinstance(result, GatewayError)
    assert walk.tries == 2


def test_with_every_key_refused_the_walk_moves_on_and_later_requests_skip_the_deployment(secrets):
    table = RouteTable(config(["KR_A", "KR_B"]))
    walk, result, sent = walk_keys(table, {"KR_A": [refusal()], "KR_B": [refusal()]})
    assert result == "qw" and sent == ["ds-a/KR_A", "ds-a/KR_B", "qw"]
    assert [a.outcome for a in walk.attempts] == ["retry", "failover", "ok"]
    walk, result, sent = walk_keys(table, {})
    assert result == "qw" and sent == ["qw"]
    skipped = walk.attempts[0]
    assert skipped.outcome == "skipped" and skipped.error.startswith("every API key of provider ds is held off")


def test_a_single_revoked_key_holds_its_provider_off(secrets):
    table = RouteTable(config(["KR_A"]))
    walk, result, sent = walk_keys(table, {"KR_A": [refusal(FailureKind.UPSTREAM_AUTH, 401)]})
    assert result == "qw" and sent == ["ds-a/KR_A", "qw"]
    assert "key" not in walk.attempts[0].to_ledger(), "one key: rows stay as they were"
    _, result, sent = walk_keys(table, {})
    assert sent == ["qw"]


def test_transient_errors_count_against_the_deployment_and_the_retry_takes_the_next_key(secrets):
    table = RouteTable(config(["KR_A", "KR_B"]))
    walk, result, sent = walk_keys(table, {"KR_A": [Failure(FailureKind.SERVER, "boom", 503)]})
    assert result == "ds-a" and sent == ["ds-a/KR_A", "ds-a/KR_B"]
    assert all(key.breaker.state == "closed" for key in table.key_rings["ds"].keys)

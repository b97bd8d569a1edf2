"""The failover walker's decisions, driven by scripted attempt outcomes (no network)."""

import asyncio

import pytest

from tollway.config import Config
from tollway.core.errors import GatewayError
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.table import RouteTable
from tollway.routing.walk import Walk
from tollway.upstream.calls import UpstreamFailure

CONFIG = {
    "retry": {"max_attempts": 6, "retries_per_deployment": 1, "backoff_base_s": 0.0, "backoff_max_s": 0.0,
              "retry_after_cap_s": 0.2},
    "providers": {
        "ds": {"kind": "deepseek", "base_url": "http://127.0.0.1:1/v1", "jurisdiction": "cn"},
        "qw": {"kind": "qwen", "base_url": "http://127.0.0.1:2/v1", "jurisdiction": "sg"},
        "oa": {"kind": "openai", "base_url": "http://127.0.0.1:3/v1", "jurisdiction": "us"},
    },
    "deployments": {
        "ds-a": {"provider": "ds", "model": "a", "context_window": 1000},
        "ds-b": {"provider": "ds", "model": "b", "context_window": 1000},
        "qw-small": {"provider": "qw", "model": "c", "context_window": 500},
        "oa-big": {"provider": "oa", "model": "d", "context_window": 100000},
    },
    "route_groups": {"g": {"deployments": ["ds-a", "ds-b", "qw-small", "oa-big"]}},
}


def walk_with(script: dict[str, list], **retry) -> tuple[Walk, str | GatewayError, list[str]]:
    """Run a walk where each deployment answers from its script (a Failure raises, anything else succeeds)."""
    config = Config.model_validate({**CONFIG, "retry": {**CONFIG["retry"], **retry}})
    table = RouteTable(config)
    calls: list[str] = []

    async def attempt(dep):
        calls.append(dep.name)
        outcome = script.get(dep.name, ["ok"]).pop(0) if script.get(dep.name) else "ok"
        if isinstance(outcome, Failure):
            raise UpstreamFailure(outcome)
        return outcome

    async def main():
        walk = Walk(config.retry, asyncio.get_running_loop().time() + 5)
        try:
            dep, result = await walk.run("g", table.groups["g"].deployments, attempt)
            return walk, f"{dep.name}:{result}"
        except GatewayError as exc:
            return walk, exc

    walk, result = asyncio.run(main())
    return walk, result, calls


def fail(kind, status=None, retry_after=None):
    return Failure(kind, kind.value, status, retry_after)


def test_first_deployment_serves():
    walk, result, calls = walk_with({})
    assert result == "ds-a:ok" and calls == ["ds-a"] and walk.tries == 1


def test_transient_error_is_retried_once_then_fails_over():
    walk, result, calls = walk_with({"ds-a": [fail(FailureKind.SERVER, 503), fail(FailureKind.SERVER, 503)]})
    assert calls == ["ds-a", "ds-a", "ds-b"] and result == "ds-b:ok"
    assert [a.outcome for a in walk.attempts] == ["retry", "failover", "ok"]


def test_empty_balance_rules_out_the_whole_provider_without_retry():
    walk, result, calls = walk_with({"ds-a": [fail(FailureKind.OUT_OF_FUNDS, 402)]})
    assert calls == ["ds-a", "qw-small"] and result == "qw-small:ok"
    assert walk.attempts[1].outcome == "skipped" and "ruled out" in walk.attempts[1].error


def test_content_filter_moves_to_another_provider():
    walk, result, calls = walk_with({"ds-a": [fail(FailureKind.CONTENT_FILTER, 400)]})
    assert calls == ["ds-a", "qw-small"]


def test_context_length_moves_to_a_larger_window_only():
    walk, result, calls = walk_with({"ds-a": [fail(FailureKind.CONTEXT_LENGTH, 400)]})
    assert calls == ["ds-a", "oa-big"], "ds-b has the same window and qw-small a smaller one"


def test_client_error_is_returned_without_trying_others():
    walk, result, calls = walk_with({"ds-a": [fail(FailureKind.CLIENT_ERROR, 422)]})
    assert calls == ["ds-a"]
    assert isinstance(result, GatewayError) and result.status == 422


def test_rate_limit_with_short_retry_after_is_honoured_long_one_moves_on():
    _, result, calls = walk_with({"ds-a": [fail(FailureKind.RATE_LIMITED, 429, 0.05)]})
    assert calls == ["ds-a", "ds-a"]
    _, result, calls = walk_with({"ds-a": [fail(FailureKind.RATE_LIMITED, 429, 30)]})
    assert calls == ["ds-a", "ds-b"]


def test_everything_rate_limited_gives_429_with_retry_after():
    everyone = {name: [fail(FailureKind.RATE_LIMITED, 429, 30)] * 2 for name in ("ds-a", "ds-b", "qw-small", "oa-big")}
    _, result, _ = walk_with(everyone)
    assert isinstance(result, GatewayError) and result.status == 429 and result.headers["Retry-After"] == "30"


def test_all_timeouts_give_504_naming_each_attempt():
    everyone = {name: [fail(FailureKind.TIMEOUT)] * 2 for name in ("ds-a", "ds-b", "qw-small", "oa-big")}
    _, result, calls = walk_with(everyone, max_attempts=4)
    assert isinstance(result, GatewayError) and result.status == 504
    assert len(calls) == 4
    for name in ("ds-a", "ds-b"):
        assert name in result.message


def test_mixed_failures_give_502():
    script = {"ds-a": [fail(FailureKind.SERVER, 500)] * 2, "ds-b": [fail(FailureKind.CONNECT)] * 2,
              "qw-small": [fail(FailureKind.UPSTREAM_AUTH, 401)], "oa-big": [fail(FailureKind.SERVER, 502)] * 2}
    _, result, _ = walk_with(script, max_attempts=10)
    assert isinstance(result, GatewayError) and result.status == 502
    assert "qw-small (qw): upstream_auth 401" in result.message


def test_open_breakers_are_skipped_and_all_open_is_503():
    config = Config.model_validate(CONFIG)
    table = RouteTable(config)
    for dep in table.deployments.values():
        dep.breaker.force_open(60)

    async def main():
        walk = Walk(config.retry, asyncio.get_running_loop().time() + 5)
        with pytest.raises(GatewayError) as err:
            await walk.run("g", table.groups["g"].deployments, lambda d: asyncio.sleep(0))
        return err.value

    error = asyncio.run(main())
    assert error.status == 503 and "circuit breaker open" in error.message

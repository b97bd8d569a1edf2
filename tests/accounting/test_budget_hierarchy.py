"""The budget hierarchy org -> team -> key -> end user (+ per-model entries) in one admission step: a
refusal names the level and window, and counters in process and in a real Redis decide identically,
Redis in one script call per admission."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import redis

from tests.accounting.support import bearer, config, row, started
from tollway.accounting.admission import ANONYMOUS, Admission
from tollway.accounting.budget_entries import BudgetEntry
from tollway.accounting.keys.records import KeySpec
from tollway.core.errors import GatewayError
from tollway.core.request import parse_request

TEAM = {"budgets": [{"window": "day", "limit_usd": "0.5"}, {"window": "day", "limit_usd": "0.25", "per_user": True}]}
ALICE = KeySpec(name="alice", team="ml", budgets=(BudgetEntry("hour", Decimal("0.4")),))
BOB = KeySpec(name="bob", team="ml")


def request(user: str | None, model: str = "chat", max_tokens: int = 20):
    body: dict = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}
    if user is not None:
        body["user"] = user
    return parse_request("chat", orjson.dumps(body))


async def settle_now(admission: Admission, ticket, cost: str) -> None:
    await admission.settle(ticket, row(cost), Decimal(cost))
    await asyncio.gather(*admission._settling)


async def transcript(cfg) -> list[str]:
    """Six requests of alice and bob (team ml) by end users u1..u5, each served for $0.10; what each got.
    A request's hold is $0.128 (88 body bytes at $1000/M, 20 output tokens at $2000/M)."""
    admission, (alice, bob) = await started(cfg, ALICE, BOB)
    admission._status_task.cancel()  # only this scenario's calls reach Redis
    keys = {"alice": await admission.authenticate(bearer(alice)), "bob": await admission.authenticate(bearer(bob))}
    got = []
    for who, user in [("alice", "u1"), ("alice", "u1"), ("alice", "u1"), ("bob", "u2"), ("alice", "u4"),
                      ("bob", "u5")]:
        try:
            ticket = await admission.reserve(keys[who], request(user), "chat")
        except GatewayError as exc:
            got.append(f"{exc.status} {exc.code}: {exc.message}")
            continue
        assert ticket.held_nano == 128_000_000
        await settle_now(admission, ticket, "0.1")
        got.append("ok")
    statuses = {(s["scope"], s["id"], s["window"]): (s["spent_usd"], s["reserved_usd"])
                for s in await admission.budget_status_now()}
    await admission.stop()
    key_id = keys["alice"].id
    got.append(f"team {statuses[('team', 'ml', 'daily')]}, alice {statuses[('key', key_id, 'hourly')]}")
    return got


def test_each_level_refuses_by_name_in_one_step(tmp_path: Path) -> None:
    got = asyncio.run(transcript(config(tmp_path, teams={"ml": TEAM})))
    assert got[:3] == ["ok", "ok", got[2]] and got[3:5] == ["ok", "ok"]
    assert got[2].startswith("429 budget_exceeded: Budget exceeded: the daily budget of end user 'u1' of team 'ml' "
                             "is $0.25; $0.20 is spent")
    assert got[5].startswith("429 budget_exceeded: Budget exceeded: the daily budget of team 'ml' is $0.50; $0.40 "
                             "is spent")
    assert got[6] == "team ('0.4', '0'), alice ('0.3', '0')"


def test_local_and_redis_counters_decide_identically_in_one_call_each(tmp_path: Path, redis_url: str) -> None:
    local = asyncio.run(transcript(config(tmp_path / "a", teams={"ml": TEAM})))
    with redis.Redis.from_url(redis_url) as client:
        client.config_resetstat()
        shared = asyncio.run(transcript(config(tmp_path / "b", teams={"ml": TEAM}, redis_url=redis_url)))
        stats = client.info("commandstats")["cmdstat_evalsha"]
    assert shared == local
    # 6 admissions and 4 settles, one script call each, and one status read (one chunk of budgets); the
    # failed calls are each script's first, answered NOSCRIPT, then loaded and sent again
    assert (stats["calls"] - stats["failed_calls"], stats["failed_calls"]) == (6 + 4 + 1, 3)


def test_a_per_model_entry_counts_only_its_route_group(tmp_path: Path) -> None:
    async def scenario() -> None:
        spec = KeySpec(name="k", budgets=(BudgetEntry("week", Decimal("0.1"), model="chat"),))
        admission, (secret,) = await started(config(tmp_path), spec)
        key = await admission.authenticate(bearer(secret))
        cheap = await admission.reserve(key, request(None, "cheap"), "cheap")
        assert cheap.held_nano == 0  # no budget of this key covers the cheap group
        with pytest.raises(GatewayError) as refused:
            await admission.reserve(key, request(None), "chat")
        assert "the weekly budget of key 'k' (" in refused.value.message
        assert ") for model 'chat' is $0.10; $0.00 is spent" in refused.value.message
        await admission.stop()

    asyncio.run(scenario())


def test_the_org_budget_counts_every_request_even_without_a_key(tmp_path: Path) -> None:
    cfg = config(tmp_path, keys={"required": "never"},
                 budgets={"org": [{"window": "month", "limit_usd": "0.2"}]})

    async def scenario() -> None:
        admission, (secret,) = await started(cfg, KeySpec(name="k"))
        key = await admission.authenticate(bearer(secret))
        first = await admission.reserve(ANONYMOUS, request(None), "chat")
        await settle_now(admission, first, "0.1")
        with pytest.raises(GatewayError) as refused:
            await admission.reserve(key, request(None), "chat")
        assert "the monthly budget of the org is $0.20; $0.10 is spent" in refused.value.message
        await admission.stop()

    asyncio.run(scenario())


def test_per_user_budgets_of_a_key_and_requests_without_a_user(tmp_path: Path) -> None:
    async def scenario() -> None:
        spec = KeySpec(name="k", budgets=(BudgetEntry("day", Decimal("0.2"), per_user=True),))
        admission, (secret,) = await started(config(tmp_path), spec)
        key = await admission.authenticate(bearer(secret))
        for user in ("alice", "bob", None):  # each user, and the requests that name none, have $0.20
            ticket = await admission.reserve(key, request(user), "chat")
            await settle_now(admission, ticket, "0.15")
        with pytest.raises(GatewayError) as refused:
            await admission.reserve(key, request(None), "chat")
        assert "the daily budget of end user '' of key 'k'" in refused.value.message
        with pytest.raises(GatewayError):
            await admission.reserve(key, request("alice"), "chat")
        await admission.reserve(key, request("carol"), "chat")
        await admission.stop()

    asyncio.run(scenario())

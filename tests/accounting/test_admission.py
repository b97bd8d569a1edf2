"""Admission in process (no network): teams share limits and budgets, brownout, budget_status, which keys
are accepted. The same code serves the gateway; the gateway tests cover it end to end."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from tests.accounting.support import bearer, chat_request, config, row, started
from tollway.accounting.admission import ANONYMOUS, Admission
from tollway.accounting.keys.records import KeySpec
from tollway.core.errors import GatewayError


async def settle_now(admission: Admission, ticket, cost: str) -> None:
    await admission.settle(ticket, row(cost), Decimal(cost))
    await asyncio.gather(*admission._settling)  # settles run in the background


def test_keys_of_a_team_share_its_budget_and_rpm(tmp_path: Path) -> None:
    cfg = config(tmp_path, teams={"ml": {"daily_usd": "0.2", "rpm": 3}})

    async def scenario() -> None:
        admission, (alice, bob) = await started(cfg, KeySpec(name="alice", team="ml"), KeySpec(name="bob", team="ml"))
        a, b = await admission.authenticate(bearer(alice)), await admission.authenticate(bearer(bob))
        ticket = await admission.reserve(a, chat_request(), "chat")
        await settle_now(admission, ticket, "0.1")
        with pytest.raises(GatewayError) as refused:
            await admission.reserve(b, chat_request(), "chat")
        assert refused.value.code == "budget_exceeded"
        assert "the daily budget of team 'ml' is $0.20; $0.10 is spent" in refused.value.message
        small = await admission.reserve(b, chat_request(max_tokens=1), "chat")  # a smaller hold fits
        await settle_now(admission, small, "0")
        await admission.reserve(a, chat_request(max_tokens=1), "chat")          # the team's third request
        with pytest.raises(GatewayError) as limited:                           # and its fourth
            await admission.reserve(b, chat_request(max_tokens=1), "chat")
        assert limited.value.code == "rate_limited" and "team 'ml' allows 3 requests per minute" in limited.value.message
        statuses = {(s["scope"], s["id"], s["window"]): s for s in admission.budget_status()}
        team = statuses[("team", "ml", "daily")]
        assert (team["limit_usd"], team["spent_usd"]) == ("0.2", "0.1") and Decimal(team["reserved_usd"]) > 0
        await admission.stop()

    asyncio.run(scenario())


def test_brownout_switches_a_key_to_the_cheaper_group_until_the_day_ends(tmp_path: Path) -> None:
    cfg = config(tmp_path, budgets={"brownout": {"chat": "cheap"}})

    async def scenario() -> None:
        admission, (secret,) = await started(cfg, KeySpec(name="k"))
        key, moved = await admission.admit(bearer(secret))
        assert dict(moved) == {}
        admission.brownout(key.id, "spend spike")
        key, moved = await admission.admit(bearer(secret))
        assert (moved.get("chat", "chat"), moved.get("cheap", "cheap")) == ("cheap", "cheap")
        assert admission._brownouts.moves(ANONYMOUS).get("chat", "chat") == "chat"
        [event] = [e for e in admission.events if e["event"] == "brownout"]
        assert (event["id"], event["reason"]) == (key.id, "spend spike") and event["until"].endswith("+00:00")
        await admission.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("required, static, anonymous_ok", [
    ("auto", False, False), ("never", False, True), ("always", False, False), ("auto", True, False)])
def test_which_callers_are_accepted(tmp_path: Path, monkeypatch, required: str, static: bool,
                                    anonymous_ok: bool) -> None:
    monkeypatch.setenv("STATIC_KEY", "sk-static-1")
    server = {"api_keys_env": ["STATIC_KEY"]} if static else {}
    cfg = config(tmp_path, keys={"required": required}, server=server)

    async def scenario() -> None:
        admission, (secret,) = await started(cfg, KeySpec(name="k", daily_usd=Decimal("1")))
        assert (await admission.authenticate(bearer(secret))).name == "k"
        if static:
            assert await admission.authenticate(bearer("sk-static-1")) is ANONYMOUS, "no budget for static keys"
        for token in ("", "sk-other", secret[:-1] + "x"):
            if anonymous_ok and not token.startswith("tw_"):
                assert await admission.authenticate(bearer(token)) is ANONYMOUS
            else:
                with pytest.raises(GatewayError) as refused:
                    await admission.authenticate(bearer(token))
                assert refused.value.status == 401
        await admission.stop()

    asyncio.run(scenario())


def test_a_revoked_key_is_refused_by_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        admission, (secret,) = await started(config(tmp_path), KeySpec(name="k"))
        key = await admission.authenticate(bearer(secret))
        admission.key_changed(admission.cache.store.revoke(key.id))
        with pytest.raises(GatewayError) as refused:
            await admission.authenticate(bearer(secret))
        assert (refused.value.status, refused.value.code) == (401, "key_revoked")
        await admission.stop()

    asyncio.run(scenario())

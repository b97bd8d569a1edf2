"""Admission runs on every request, so it prepares what it can; these tests pin down that the prepared
shortcuts are taken, and that they never serve a stale answer: a revoked or edited key, a price that
changed at a minute boundary, a new budget period.

(Counts of work done, not timings: a busy CI machine cannot fail them.)
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.accounting.support import chat_request, config, row, started
from tollway.accounting.holds import HoldCalculator
from tollway.accounting.keys import records as keys
from tollway.accounting.keys.records import KeySpec
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.catalog.pricing import Price
from tollway.core.errors import GatewayError


def request_with(secret: str) -> SimpleNamespace:
    return SimpleNamespace(headers={"authorization": f"Bearer {secret}"})  # lower-case names, as served


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Every salted hash of a presented secret (the work a remembered secret skips)."""
    calls: list[str] = []
    real = keys.hash_secret

    def counting(salt: str, secret: str) -> str:
        calls.append(salt)
        return real(salt, secret)

    monkeypatch.setattr(keys, "hash_secret", counting)
    return calls


def test_a_verified_secret_is_not_hashed_again_until_a_key_changes(tmp_path: Path, hashes: list[str]) -> None:
    async def scenario() -> None:
        admission, (alice, bob) = await started(config(tmp_path), KeySpec(name="alice"), KeySpec(name="bob"))
        hashes.clear()  # creating the keys hashed their secrets
        for _ in range(100):
            assert (await admission.authenticate(request_with(alice))).name == "alice"
        assert len(hashes) == 1
        with pytest.raises(GatewayError) as wrong:
            await admission.authenticate(request_with(alice[:-1] + ("0" if alice[-1] != "0" else "1")))
        assert wrong.value.status == 401, "a remembered secret does not vouch for a similar one"
        key = await admission.authenticate(request_with(bob))
        admission.key_changed(admission.cache.store.update(key.id, KeySpec(team="ml")))  # an admin API edit
        assert (await admission.authenticate(request_with(bob))).team == "ml", "the edit is seen at once"
        assert (await admission.authenticate(request_with(alice))).name == "alice"
        assert len(hashes) == 5, "any key change makes every secret verify again, once"
        await admission.stop()

    asyncio.run(scenario())


def test_a_key_revoked_elsewhere_is_refused_after_the_next_refresh(tmp_path: Path) -> None:
    async def scenario() -> None:
        admission, (secret,) = await started(config(tmp_path), KeySpec(name="k"))
        key = await admission.authenticate(request_with(secret))
        admission.cache.store.revoke(key.id)         # another replica, or `tollway keys revoke`
        await admission.cache.refresh()               # what the cache does every keys.refresh_ms
        with pytest.raises(GatewayError) as refused:
            await admission.authenticate(request_with(secret))
        assert (refused.value.status, refused.value.code) == (401, "key_revoked")
        await admission.stop()

    asyncio.run(scenario())


def test_edited_limits_apply_to_the_next_request(tmp_path: Path) -> None:
    async def scenario() -> None:
        admission, (secret,) = await started(config(tmp_path), KeySpec(name="k", rpm=100))
        key = await admission.authenticate(request_with(secret))
        await admission.settle(await admission.reserve(key, chat_request(), "chat"), row("0"), Decimal(0))
        admission.key_changed(admission.cache.store.update(key.id, KeySpec(rpm=1)))
        key = await admission.authenticate(request_with(secret))
        with pytest.raises(GatewayError) as limited:
            await admission.reserve(key, chat_request(), "chat")
        assert limited.value.code == "rate_limited" and "allows 1 requests per minute" in limited.value.message
        admission.key_changed(admission.cache.store.update(key.id, KeySpec(daily_usd=Decimal("0.01"), rpm=None)))
        key = await admission.authenticate(request_with(secret))
        with pytest.raises(GatewayError) as over:
            await admission.reserve(key, chat_request(max_tokens=100), "chat")
        assert over.value.code == "budget_exceeded" and "$0.01" in over.value.message
        await admission.stop()

    asyncio.run(scenario())


def test_ticket_ids_are_unique_and_short(tmp_path: Path) -> None:
    async def scenario() -> None:
        admission, (secret,) = await started(config(tmp_path), KeySpec(name="k", rpm=10**6))
        key = await admission.authenticate(request_with(secret))
        tickets = [await admission.reserve(key, chat_request(), "chat") for _ in range(2_000)]
        ids = {t.id for t in tickets}
        assert len(ids) == 2_000 and max(len(i) for i in ids) < 32
        other, _ = await started(config(tmp_path / "other"))
        assert next(other._tickets)[:12] != tickets[0].id[:12], "each process draws its own prefix"
        for ticket in tickets:
            await admission.settle(ticket, row("0"), Decimal(0))
        await admission.stop()
        await other.stop()

    (tmp_path / "other").mkdir()
    asyncio.run(scenario())


class SteppedPricer(DeploymentPricer):
    """$1/M before STEP and $3/M from it on, counting lookups."""

    def __init__(self, step: datetime) -> None:
        super().__init__(Catalog.load())
        self.step, self.lookups = step, 0

    def price(self, dep, at, prompt_tokens=0):  # type: ignore[override]
        self.lookups += 1
        rate = Decimal(1) if at < self.step else Decimal(3)
        return Price.usd(input=rate, output=rate)


def test_hold_prices_are_looked_up_once_a_minute_and_never_stale(tmp_path: Path) -> None:
    step = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
    pricer = SteppedPricer(step)
    calc = HoldCalculator(config(tmp_path), pricer, 1600)
    creq = chat_request(max_tokens=10)
    tokens = creq.raw_size + 10
    early = step - timedelta(minutes=5)
    holds = {calc.hold(creq, "chat", early + timedelta(seconds=s)).nano for s in range(0, 60, 2)}
    assert holds == {tokens * 1000} and pricer.lookups <= 6, "one minute, one lookup round"
    assert calc.hold(creq, "chat", step - timedelta(seconds=1)).nano == tokens * 1000
    assert calc.hold(creq, "chat", step).nano == tokens * 3000, "a new price holds from its first second"
    assert pricer.lookups <= 3 * 6, "three minutes, three lookup rounds"
    assert calc.hold(creq, "chat", step + timedelta(minutes=1, seconds=30)).nano == tokens * 3000


def test_a_cheaper_price_is_held_only_once_the_dearer_one_is_a_minute_past(tmp_path: Path) -> None:
    """The ledger prices a request at its arrival, which admission may follow by a moment: the hold
    covers every price in force within the minute before."""
    step = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
    pricer = SteppedPricer(step)
    pricer.price = lambda dep, at, prompt_tokens=0: Price.usd(  # type: ignore[method-assign]
        input=Decimal(3) if at < step else Decimal(1), output=Decimal(3) if at < step else Decimal(1))
    calc = HoldCalculator(config(tmp_path), pricer, 1600)
    creq = chat_request(max_tokens=10)
    tokens = creq.raw_size + 10
    assert calc.hold(creq, "chat", step + timedelta(seconds=30)).nano == tokens * 3000
    assert calc.hold(creq, "chat", step + timedelta(minutes=2)).nano == tokens * 1000


def test_paced_first_moves_the_paced_deployment_first_and_leaves_a_plan_already_in_order() -> None:
    from tollway.accounting.pacing_order import paced_first

    a, b, c = (SimpleNamespace(name=n) for n in "abc")
    plan = [a, b, c]
    assert paced_first("a", plan) is plan
    assert paced_first("c", plan) == [c, a, b]
    assert paced_first("", plan) is plan


@pytest.mark.parametrize("cost", ["0", "0.000123", "0.0000000001", "0.0000000019", "12.5", "1E+1", "-0.0000000015",
                                  "0.07500000000000000000"])
def test_nano_of_a_cost_is_to_nano_of_it(cost: str) -> None:
    from tollway.core.money import nano_of, to_nano

    assert nano_of(Decimal(cost)) == to_nano(Decimal(cost))


def test_nano_of_a_cost_beyond_a_counter_raises() -> None:
    from tollway.core.money import nano_of

    with pytest.raises(ValueError, match="beyond what a budget counter holds"):
        nano_of(Decimal(10**8))

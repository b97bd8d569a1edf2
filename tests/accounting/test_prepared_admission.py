"""The prepared in-process admission (prepared_admission.py) must answer exactly as the generic path of
counters.py: the same decisions, refusals (codes, messages, Retry-After), alerts, and the same counts left
in every rate window and budget. Each scenario runs twice, once as served and once with the prepared path
switched off, and the two transcripts must be equal; other tests check the prepared path is the one taken,
and that it never writes to entries the counters have forgotten."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from tests.accounting.support import bearer, chat_request, started
from tollway.accounting.admission import Admission
from tollway.accounting.counters.local import LocalCounters
from tollway.accounting.keys.records import KeySpec
from tollway.accounting.prepared_admission import InProcessAdmission
from tollway.config import Config
from tollway.core.errors import GatewayError
from tollway.ledger.schema import LedgerRow

HOLD_S = 30


def paced_config(tmp_path: Path, brownout: bool) -> Config:
    provider = {"kind": "vllm", "base_url": "http://127.0.0.1:1/v1"}
    price = {"input": "1000", "output": "2000"}
    return Config.model_validate({
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"p": provider},
        "deployments": {"a": {"provider": "p", "model": "m", "price": price},
                        "b": {"provider": "p", "model": "n", "price": price},
                        "c": {"provider": "p", "model": "o", "price": {"input": "1", "output": "1"}}},
        "route_groups": {"pair": {"deployments": ["a", "b"]}, "cheap": {"deployments": ["c"]}},
        "limits": {"deployments": {"a": {"rpm": 2}, "b": {"rpm": 4, "tpm": 100_000}}},
        "teams": {"ml": {"rpm": 7, "tpm": 100_000, "daily_usd": "1", "monthly_usd": "5"}},
        "budgets": {"reservation_timeout_s": HOLD_S, **({"brownout": {"pair": "cheap"}} if brownout else {})},
    })


def served(deployment: str, cost: str) -> LedgerRow:
    return LedgerRow(id="r", ts="", endpoint="chat", requested_model="pair", status="ok", http_status=200,
                     deployment=deployment, cost_usd=cost, prompt_tokens=7, completion_tokens=16)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def snapshot(admission: Admission, names: dict[str, str]) -> dict:
    """Every window's and budget's counts, with key ids replaced by names (they differ between runs)."""
    local = admission.counters.local

    def named(text: str) -> str:
        for key_id, name in names.items():
            text = text.replace(key_id, name)
        return text

    windows = {named(s): (w.requests, w.tokens, len(w.live)) for s, w in local._rates.items() if w.slots or w.live}
    budgets = {named(n): (b.spent, b.reserved, b.alerted, len(b.late)) for n, b in local._budgets.items()
               if b.spent or b.reserved or b.late}
    return {"windows": windows, "budgets": budgets, "held": len(local._held)}


async def transcript(tmp_path: Path, brownout: bool) -> list:
    admission, (alice, bob) = await started(paced_config(tmp_path, brownout),
                                            KeySpec(name="alice", team="ml", rpm=4, tpm=50_000,
                                                    daily_usd=Decimal("0.5")),
                                            KeySpec(name="bob", team="ml"))
    clock = Clock()
    admission.counters.local._clock = clock
    a, b = await admission.authenticate(bearer(alice)), await admission.authenticate(bearer(bob))
    names = {a.id: "alice", b.id: "bob"}
    log: list = []
    tickets: list = []

    async def reserve(key, max_tokens: int = 20) -> None:
        plan = admission.holds.groups["pair"]
        try:
            ticket = await admission.reserve(key, chat_request(max_tokens), "pair", plan)
        except GatewayError as exc:
            message = exc.message
            for key_id, name in names.items():
                message = message.replace(key_id, name)
            log.append(("refused", exc.status, exc.code, message, sorted(exc.headers.items())))
        else:
            tickets.append(ticket)
            log.append(("admitted", ticket.paced, ticket.held_nano, ticket.held_tokens, ticket.backend))
        log.append(snapshot(admission, names))

    async def settle(ticket, deployment: str, cost: str) -> None:
        await admission.settle(ticket, served(deployment, cost), Decimal(cost))
        await asyncio.gather(*admission._settling)
        log.append(snapshot(admission, names))

    await reserve(a)                          # paced on a
    await settle(tickets[-1], "a", "0.25")
    await reserve(a)                          # paced on a, served by b (failover)
    await settle(tickets[-1], "b", "0.02")
    await reserve(b)                          # a is full: paced on b
    await settle(tickets[-1], "b", "0.01")
    clock.now += 1
    await reserve(a, max_tokens=2)
    await reserve(a, max_tokens=2)            # past the soft threshold of alice's daily budget
    await reserve(a, max_tokens=2)            # alice's rpm (4) has run out
    await reserve(b, max_tokens=2)            # the last room on b
    await reserve(b, max_tokens=2)            # a and b are both at their rpm
    await reserve(b, max_tokens=100_000)      # more tokens than the team's tpm
    await reserve(b, max_tokens=20_000)       # more than the team's daily budget
    for ticket in tickets[3:]:
        await settle(ticket, ticket.paced, "0.05")
    clock.now += 61                           # the minute has passed
    admission.counters.local._forget_old(int(clock.now * 1000))
    await reserve(b)
    admission.counters.local._forget_old(int((clock.now + 61) * 1000))  # forgotten between reserve and settle
    await settle(tickets[-1], tickets[-1].paced, "0.01")
    await reserve(a)
    await reserve(b)
    clock.now += HOLD_S + 1                   # its hold expires unsettled ...
    await reserve(b)                          # (released at the next admission)
    await settle(tickets[-2], tickets[-2].paced, "0.05")  # ... and its late settle still counts, once
    await settle(tickets[-2], tickets[-2].paced, "0.05")
    await settle(tickets[-1], "c", "0.01")    # served by a deployment pacing knows nothing of
    log.append([{k: v for k, v in e.items() if k not in ("ts", "id", "until")} for e in admission.events])
    log.append([{k: v for k, v in s.items() if k not in ("id", "name")} for s in admission.budget_status()])
    await admission.stop()
    return log


def generic_only(monkeypatch) -> None:
    monkeypatch.setattr(LocalCounters, "admit_prepared", lambda *args, **kwargs: None)
    monkeypatch.setattr(InProcessAdmission, "settle", lambda *args: False)


@pytest.mark.parametrize("brownout", [False, True])
def test_the_prepared_path_answers_and_counts_exactly_as_the_generic_one(tmp_path: Path, monkeypatch,
                                                                          brownout: bool) -> None:
    prepared = asyncio.run(transcript(tmp_path / "prepared", brownout))
    with monkeypatch.context() as patch:
        generic_only(patch)
        generic = asyncio.run(transcript(tmp_path / "generic", brownout))
    outcomes = [entry[0] for entry in prepared if isinstance(entry, tuple)]
    assert "admitted" in outcomes and "refused" in outcomes, "the scenario exercises both"
    refusals = " | ".join(entry[3] for entry in prepared if isinstance(entry, tuple) and entry[0] == "refused")
    for kind in ("key 'alice' (alice) allows 4 requests per minute", "Every deployment", "tokens per minute",
                 "Budget exceeded"):
        assert kind in refusals, f"the scenario has a refusal for: {kind}"
    assert any(e["event"] == "budget_soft_threshold" for e in prepared[-2])
    for step, (mine, theirs) in enumerate(zip(prepared, generic)):
        assert mine == theirs, f"step {step} differs"
    assert len(prepared) == len(generic)


def test_the_prepared_path_is_the_one_taken(tmp_path: Path, monkeypatch) -> None:
    calls = {"admit_now": 0, "settle_quietly": 0}
    for name in calls:
        real = getattr(LocalCounters, name)

        def counting(self, *args, _real=real, _name=name):
            calls[_name] += 1
            return _real(self, *args)

        monkeypatch.setattr(LocalCounters, name, counting)

    async def scenario() -> None:
        admission, (secret,) = await started(paced_config(tmp_path, False),
                                             KeySpec(name="k", team="ml", rpm=1000, daily_usd=Decimal(10)))
        key = await admission.authenticate(bearer(secret))
        for _ in range(3):
            ticket = await admission.reserve(key, chat_request(), "pair", admission.holds.groups["pair"])
            assert ticket.backend == "local" and ticket.paced in ("a", "b")
            await admission.settle(ticket, served(ticket.paced, "0.001"), Decimal("0.001"))
        assert calls == {"admit_now": 0, "settle_quietly": 0}
        budgets = {(s["scope"], s["window"]): s for s in admission.budget_status()}
        assert budgets[("key", "daily")]["spent_usd"] == "0.003" and budgets[("key", "daily")]["reserved_usd"] == "0"
        assert budgets[("team", "monthly")]["spent_usd"] == "0.003"
        await admission.stop()

    asyncio.run(scenario())


def test_forgotten_entries_are_never_charged(tmp_path: Path) -> None:
    """Once the counters drop an idle window, a prepared reference to it is stale: the next request must
    be counted in the window the counters hold now (or later requests would not see it)."""

    async def scenario() -> None:
        admission, (secret,) = await started(paced_config(tmp_path, False), KeySpec(name="k", rpm=1))
        clock = Clock()
        local = admission.counters.local
        local._clock = clock
        key = await admission.authenticate(bearer(secret))
        ticket = await admission.reserve(key, chat_request(), "pair")
        await admission.settle(ticket, served(ticket.paced, "0"), Decimal(0))
        clock.now += 61
        local._forget_old(int(clock.now * 1000))
        assert f"key:{key.id}" not in local._rates, "the idle window was forgotten"
        await admission.reserve(key, chat_request(), "pair")
        assert local._rates[f"key:{key.id}"].requests == 1
        with pytest.raises(GatewayError) as refused:
            await admission.reserve(key, chat_request(), "pair")
        assert refused.value.code == "rate_limited", "the second request in the minute is refused (rpm 1)"
        await admission.stop()

    asyncio.run(scenario())

"""Two gateway processes sharing one real Redis and one real PostgreSQL: budgets, rate limits and
revocations hold across replicas exactly as on one machine."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import threading
import time
from decimal import Decimal

import openai
import pytest

from tests.accounting.support import (
    Admin,
    budget_config,
    exact_nano_sum,
    redis_budget,
    send_load,
    wait_for,
    wait_for_rows,
    wait_for_settled,
)
from tests.gateway.support import chat
from tests.processes import TOLLWAY
from tollway.core.money import NANO_PER_USD

pytestmark = pytest.mark.slow


class BudgetWatch:
    """Polls the budget on one replica while load runs, keeping the largest spent and spent+reserved seen."""

    def __init__(self, admin: Admin, key_id: str) -> None:
        self.admin, self.key_id = admin, key_id
        self.max_spent = self.max_committed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "BudgetWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            status = self.admin.find_budget(self.key_id)
            if status is None:  # this replica has not read the new key yet
                time.sleep(0.05)
                continue
            self.max_spent = max(self.max_spent, status["spent_nano"])
            self.max_committed = max(self.max_committed, status["spent_nano"] + status["reserved_nano"])
            time.sleep(0.05)


def test_two_replicas_share_one_budget_with_zero_overshoot(emulator_factory, replicas, redis_url,
                                                           postgres_url) -> None:
    emu = emulator_factory(None, ttft_ms=20, tpot_ms=1)
    a, b = replicas(budget_config(emu), redis_url, postgres_url)
    admin = Admin(a)
    key_id, secret = admin.create_key(name="shared", daily_usd="2")
    limit_nano = 2 * NANO_PER_USD
    with BudgetWatch(Admin(b), key_id) as watch:
        outcomes = asyncio.run(send_load([a, b], secret, 200, spread_s=2.0))
    ok = [o for o in outcomes if o.status == 200 and not o.code]
    refused = [o for o in outcomes if o.code == "budget_exceeded"]
    assert len(ok) + len(refused) == 200, {o.status for o in outcomes}
    assert len(ok) >= 20 and refused, "the budget was used up by both replicas and then refused"

    client = b.client(api_key=secret)
    extra = 0
    while True:  # nothing in flight now: use what is left, one request at a time, until one does not fit
        try:
            client.chat.completions.create(**chat(), max_tokens=20)
            extra += 1
        except openai.RateLimitError as exc:
            assert exc.body["code"] == "budget_exceeded"
            hold = Decimal(re.search(r"may cost up to \$([0-9]+\.[0-9]+)", exc.body["message"]).group(1))
            break
    spent, _ = wait_for_settled(redis_url, key_id)
    assert spent <= limit_nano, "zero overshoot"
    assert spent + hold * NANO_PER_USD > limit_nano, "refused only because the hold no longer fits"
    assert watch.max_committed <= limit_nano and watch.max_spent <= limit_nano

    rows = wait_for_rows(postgres_url, key_id, 201 + extra)
    assert len(rows) == 201 + extra
    assert {r["id"] for r in rows} >= {o.request_id for o in outcomes}, "every request has a ledger row"
    assert sum(1 for r in rows if r["status"] == "ok") == len(ok) + extra
    assert {r["streamed"] for r in rows if r["status"] == "ok"} == {0, 1}
    assert exact_nano_sum(rows) == spent, "the ledger's sum equals Redis's spend"
    assert abs(sum(Decimal(str(r["cost_usd"])) for r in rows) * NANO_PER_USD - spent) < 1000, "to the micro-dollar"
    assert all(Decimal(str(r["cost_usd"])) > 0 for r in rows if r["status"] == "ok"), "streams are not free"
    assert Admin(b).budget(key_id)["spent_nano"] == spent, "each replica reports the shared spend"


def test_rpm_and_tpm_hold_across_replicas(emulator_factory, replicas, redis_url, postgres_url) -> None:
    emu = emulator_factory(None, ttft_ms=10)
    a, b = replicas(budget_config(emu), redis_url, postgres_url)
    admin = Admin(a)
    _, rpm_secret = admin.create_key(name="rpm", rpm=10)
    outcomes = asyncio.run(send_load([a, b], rpm_secret, 30, spread_s=0.5, prefix="rpm"))
    assert sum(o.status == 200 for o in outcomes) == 10
    assert {o.code for o in outcomes if o.status != 200} == {"rate_limited"}

    tpm_id, tpm_secret = admin.create_key(name="tpm", tpm=300)  # each request: 3 + 20 estimated, 7 + 16 real
    outcomes = asyncio.run(send_load([a, b], tpm_secret, 30, spread_s=0.5, prefix="tpm"))
    assert sum(o.status == 200 for o in outcomes) == 13
    rows = wait_for_rows(postgres_url, tpm_id, 30)
    used = sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows if r["status"] == "ok")
    assert used <= 300 < used + 23, "within one request of the limit"


def test_revoking_on_one_replica_refuses_on_the_other_within_a_second(emulator, replicas, redis_url,
                                                                      postgres_url) -> None:
    a, b = replicas(budget_config(emulator), redis_url, postgres_url)
    key_id, secret = Admin(a).create_key(name="soon-gone")
    assert b.client(api_key=secret).chat.completions.create(**chat()).choices
    Admin(a).revoke(key_id)
    started = time.monotonic()
    wait_for(lambda: _refused(b, secret), timeout=1.0, interval=0.01)
    assert time.monotonic() - started < 1.0


def test_without_redis_a_cli_revocation_reaches_every_replica_through_the_database(emulator, replicas,
                                                                                   postgres_url) -> None:
    a, b = replicas(budget_config(emulator), None, postgres_url)
    key_id, secret = Admin(a).create_key(name="cli-revoked")
    for gw in (a, b):
        assert gw.client(api_key=secret).chat.completions.create(**chat()).choices
    done = subprocess.run([*TOLLWAY, "keys", "--database-url", postgres_url, "revoke", key_id],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    started = time.monotonic()
    for gw in (a, b):
        wait_for(lambda: _refused(gw, secret), timeout=1.0, interval=0.01)
    assert time.monotonic() - started < 1.0


def test_a_gateway_killed_mid_request_releases_its_hold_after_the_timeout(emulator_factory, replicas,
                                                                          redis_url, postgres_url) -> None:
    emu = emulator_factory({"models": {"deepseek-flash": {"ttft_ms": 3000}}})
    config = budget_config(emu, budgets={"reservation_timeout_s": 2})
    a, b = replicas(config, redis_url, postgres_url)
    key_id, secret = Admin(a).create_key(name="orphan", daily_usd="1")
    threading.Thread(target=_quietly, args=(a, secret), daemon=True).start()
    wait_for(lambda: redis_budget(redis_url, key_id)[1] > 0)
    held = redis_budget(redis_url, key_id)
    a.terminate(signal.SIGKILL)
    killed_at = time.monotonic()
    assert redis_budget(redis_url, key_id) == held, "nobody settles for the dead replica"
    released = wait_for(lambda: redis_budget(redis_url, key_id) == (0, 0), timeout=6)
    assert released and time.monotonic() - killed_at < 5
    assert Admin(b).budget(key_id)["reserved_usd"] == "0"


def _refused(gw, secret: str) -> bool:
    try:
        gw.client(api_key=secret).chat.completions.create(**chat(), max_tokens=1)
    except openai.AuthenticationError:
        return True
    return False


def _quietly(gw, secret: str) -> None:
    try:
        gw.client(api_key=secret, timeout=30).chat.completions.create(**chat(), max_tokens=20)
    except openai.APIError:
        pass

"""The executor as users run it: a SIGKILL mid-batch then a restart finishes the batch with each line
sent once, and a budget that runs out mid-batch fails the remaining lines without charging them."""

from __future__ import annotations

import signal
import time
from collections import Counter
from decimal import Decimal

import orjson

from tests.batch.support import (
    ADMIN_KEY,
    admin_patch_key,
    batch_config,
    clock_env,
    create_key,
    line,
    sent_contents,
    upload,
    wait_for,
    with_admin,
)


def _wait_completed(client, batch_id: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.batches.retrieve(batch_id).request_counts.completed < count:
        assert time.monotonic() < deadline, f"batch {batch_id}: {count} lines never completed"
        time.sleep(0.1)


def _wait_line_rows(gw, batch_id: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for row in gw.rows() if row["batch_id"] == batch_id) < count:
        assert time.monotonic() < deadline, f"batch {batch_id}: {count} line rows never written"
        time.sleep(0.05)


def test_a_killed_gateway_resumes_the_batch_on_restart_and_sends_each_line_once(emulator_factory, gateway_factory):
    emu = emulator_factory()
    config = batch_config(emu)
    env = clock_env(before_boundary_s=20)
    gw = gateway_factory(config, env=env)
    client = gw.client()
    lines = [line("now-1", model="now"), line("now-2", model="now"), line("late-1"), line("late-2"), line("late-3")]
    batch = client.batches.create(input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    _wait_completed(client, batch.id, 2)  # Qwen's lines ran at once; DeepSeek's wait for off-peak
    assert sent_contents(emu, "deepseek-flash") == []
    _wait_line_rows(gw, batch.id, 2)  # a SIGKILL loses rows the ledger still queues: wait till they are written
    gw.terminate(signal.SIGKILL)

    restarted = gateway_factory(config, env=env, extra_args=("--ledger", str(gw.ledger)))
    client = restarted.client()
    done = wait_for(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 5, done
    sent = Counter(sent_contents(emu, "deepseek-flash") + sent_contents(emu, "qwen3.5-plus"))
    assert sent == {f"say {name}": 1 for name in ("now-1", "now-2", "late-1", "late-2", "late-3")}
    rows = [r for r in gw.rows(wait_for=10) if r["batch_id"] == batch.id]  # the ledger file both used
    assert sorted(r["id"] for r in rows) == [f"{batch.id}-{i}" for i in range(5)]
    assert {r["id"]: r["price_rate"] for r in rows} == {
        f"{batch.id}-0": "standard", f"{batch.id}-1": "standard", f"{batch.id}-2": "off_peak",
        f"{batch.id}-3": "off_peak", f"{batch.id}-4": "off_peak"}
    assert Decimal(done.model_extra["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in rows)


def test_a_budget_that_runs_out_mid_batch_fails_the_rest_and_charges_nothing(emulator_factory, gateway_factory):
    emu = emulator_factory()
    gw = gateway_factory(with_admin(batch_config(emu)),
                         env={**clock_env(before_boundary_s=15), "TOLLWAY_ADMIN_KEY": ADMIN_KEY})
    key_id, secret = create_key(gw, daily_usd="5")
    client = gw.client(secret)
    lines = [line("now-1", model="now"), line("late-1"), line("late-2")]
    batch = client.batches.create(input_file_id=upload(client, lines).id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    _wait_completed(client, batch.id, 1)
    admin_patch_key(gw, key_id, daily_usd="0.000001")  # spent already: nothing more fits
    done = wait_for(client, batch.id)
    assert done.status == "completed" and (done.request_counts.completed, done.request_counts.failed) == (1, 2)
    assert sent_contents(emu, "deepseek-flash") == []
    errors = [orjson.loads(raw) for raw in client.files.content(done.error_file_id).content.splitlines()]
    assert [e["custom_id"] for e in errors] == ["late-1", "late-2"]
    assert {e["error"]["code"] for e in errors} == {"budget_exceeded"}
    assert all(e["response"]["status_code"] == 429 for e in errors)
    rows = {r["id"]: r for r in gw.rows(wait_for=5) if r["batch_id"] == batch.id}
    assert (rows[f"{batch.id}-1"]["cost_usd"], rows[f"{batch.id}-1"]["http_status"]) == ("0", 429)
    assert (rows[f"{batch.id}-2"]["cost_usd"], rows[f"{batch.id}-2"]["http_status"]) == ("0", 429)
    assert Decimal(done.model_extra["cost_usd"]) == Decimal(rows[f"{batch.id}-0"]["cost_usd"]) > 0


def test_lines_not_sent_when_the_window_ends_expire_uncharged(emulator_factory, gateway_factory):
    emu = emulator_factory()
    config = batch_config(emu)
    gw = gateway_factory(config, env=clock_env(before_boundary_s=1800))  # off-peak in 30 minutes
    client = gw.client()
    batch = client.batches.create(input_file_id=upload(client, [line("now-1", model="now"), line("late-1")]).id,
                                  endpoint="/v1/chat/completions", completion_window="1h")
    _wait_completed(client, batch.id, 1)
    _wait_line_rows(gw, batch.id, 1)
    gw.terminate(signal.SIGKILL)

    # the gateway comes back two hours later, past the batch's window
    later = gateway_factory(config, env=clock_env(before_boundary_s=1800 - 7200),
                            extra_args=("--ledger", str(gw.ledger)))
    done = wait_for(later.client(), batch.id)
    assert done.status == "expired" and done.expired_at, done
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    errors = [orjson.loads(raw) for raw in later.client().files.content(done.error_file_id).content.splitlines()]
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("late-1", "batch_expired")]
    assert sent_contents(emu, "deepseek-flash") == []
    assert Decimal(done.model_extra["cost_usd"]) > 0  # the line that ran, only
    _wait_line_rows(gw, batch.id, 2)
    expired = next(r for r in gw.rows() if r["id"] == f"{batch.id}-1")
    assert (expired["status"], expired["http_status"], expired["cost_usd"], expired["error"]) == (
        "error", 504, "0", "The batch's completion window ended before this line was sent.")


class _RateLimitedOnce:
    """A LineService whose first attempt at each line is refused by a rate limit (so never run)."""

    def __init__(self) -> None:
        self.attempts: Counter = Counter()

    async def run(self, run):
        from tollway.batch.types import LineOutcome

        self.attempts[run.line.custom_id] += 1
        if self.attempts[run.line.custom_id] == 1:
            return LineOutcome(429, None, Decimal(0), "standard", {"code": "rate_limited", "message": "Rate limit"})
        return LineOutcome(200, {"ok": True}, Decimal("0.001"), "standard")

    async def record_native(self, run, result):  # pragma: no cover - no native lines here
        raise AssertionError

    async def record_unsent(self, run, state, message):  # pragma: no cover - every line is sent
        raise AssertionError


def test_a_line_a_rate_limit_refused_is_sent_again_later(tmp_path, monkeypatch):
    import asyncio
    from datetime import datetime, timezone

    from tollway.accounting.admission import Admission
    from tollway.batch import executor as executor_module
    from tollway.batch.db import BatchDatabase
    from tollway.batch.executor import BatchExecutor
    from tollway.batch.files import FileStore
    from tollway.batch.settings import BatchSettings
    from tollway.batch.store import BatchRecord, BatchStore
    from tollway.batch.types import BatchLine, PlannedLine
    from tollway.config import Config
    from tollway.routing.table import RouteTable

    monkeypatch.setattr(executor_module, "RETRY_BASE_S", 0.05)
    config = Config.model_validate({"providers": {"q": {"kind": "qwen", "base_url": "http://127.0.0.1:9/v1"}},
                                    "deployments": {"qwen": {"provider": "q", "model": "qwen3.5-plus"}},
                                    "route_groups": {"now": {"deployments": ["qwen"]}}})

    async def scenario() -> None:
        db = BatchDatabase(tmp_path / "ledger.db", None)
        files, store = FileStore(db, None), BatchStore(db)
        body = {"model": "now", "messages": [{"role": "user", "content": "hi"}]}
        lines = [BatchLine(i, f"l{i}", "/v1/chat/completions", "now", body) for i in range(2)]
        content = b"".join(orjson.dumps({"custom_id": x.custom_id, "url": x.endpoint, "body": body}) + b"\n"
                           for x in lines)
        stored = await files.put("", "batch", "in.jsonl", content)
        now = datetime.now(timezone.utc)
        record = BatchRecord("batch_rl", "", "openai", "/v1/chat/completions", stored.id, "24h", "validating",
                             int(now.timestamp()), int(now.timestamp()) + 86400, total=2)
        planned = [PlannedLine(i, "qwen", "scheduled", now, "standard", Decimal(0)) for i in range(2)]
        await db.run(lambda d: store.create_sync(d, record, lines, planned))
        service = _RateLimitedOnce()
        table = RouteTable(config, None, resolve_secrets=False)
        runner = BatchExecutor(store, files, service, BatchSettings(poll_s=0.02), Admission(config), lambda: table)
        await runner.start()
        for _ in range(300):
            done = await store.get("batch_rl")
            if done is not None and done.status == "completed":
                break
            await asyncio.sleep(0.02)
        await runner.stop()
        db.close()
        assert done is not None and done.status == "completed" and (done.completed, done.failed) == (2, 0)
        assert service.attempts == {"l0": 2, "l1": 2}

    asyncio.run(scenario())


def test_a_self_hosted_deployment_takes_lines_only_while_its_queue_has_room(tmp_path):
    from tollway.accounting.admission import Admission
    from tollway.batch.executor import BatchExecutor
    from tollway.batch.settings import BatchSettings
    from tollway.config import Config
    from tollway.routing.spillover import BackendLoad
    from tollway.routing.table import RouteTable

    config = Config.model_validate({
        "providers": {"local": {"kind": "vllm", "base_url": "http://127.0.0.1:9/v1"},
                      "q": {"kind": "qwen", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"gpu": {"provider": "local", "model": "qwen3-8b"},
                        "qwen": {"provider": "q", "model": "qwen3.5-plus"}},
        "route_groups": {"chat": {"deployments": ["gpu", "qwen"]}}})
    table = RouteTable(config, None, resolve_secrets=False)
    runner = BatchExecutor(None, None, None, BatchSettings(selfhost_max_waiting=2), Admission(config),  # type: ignore[arg-type]
                           lambda: table)
    gpu = table.deployments["gpu"]
    assert gpu.self_hosted and runner._has_room("gpu")  # no reading yet
    gpu.backend_load = BackendLoad(waiting=3, kv_usage=0.9, at=time.monotonic())
    assert not runner._has_room("gpu") and runner._has_room("qwen")
    gpu.backend_load = BackendLoad(waiting=2, kv_usage=0.9, at=time.monotonic())
    assert runner._has_room("gpu")
    gpu.backend_load = BackendLoad(waiting=30, kv_usage=0.9, at=time.monotonic() - 120)
    assert runner._has_room("gpu"), "a stale reading kept the deployment closed"

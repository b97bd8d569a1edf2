"""Native mode in process: the executor submits each deployment's share once to its NativeBatchClient
(a fake here; the real clients live in batch/native/), stores the upstream batch id before anything else,
polls it, records each result through the LineService, and after a restart polls, never resubmits."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import orjson

from tollway.accounting.admission import Admission
from tollway.batch.db import BatchDatabase
from tollway.batch.executor import BatchExecutor
from tollway.batch.files import FileStore
from tollway.batch.schedule import plan_batch
from tollway.batch.settings import BatchSettings
from tollway.batch.store import BatchRecord, BatchStore
from tollway.batch.types import BatchLine, LineOutcome, LineRun, NativeResult, NativeSubmission
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.routing.table import RouteTable

CONFIG = Config.model_validate({
    "providers": {"anthropic": {"kind": "anthropic", "base_url": "https://api.anthropic.com/v1"}},
    "deployments": {"claude": {"provider": "anthropic", "model": "claude-fable-5.1"}},
    "route_groups": {"claude": {"deployments": ["claude"]}},
})


class FakeNativeClient:
    """A NativeBatchClient (batch/types.py) that records what it is asked and ends after some polls."""

    dialect = "anthropic"
    endpoints = frozenset({"/v1/chat/completions", "/v1/messages"})
    max_lines = 100_000
    max_bytes = 256 * 1024 * 1024

    def ends_within_s(self, window: str) -> int:
        return 24 * 3600

    def __init__(self, polls_before_done: int) -> None:
        self.submitted: list[list[str]] = []
        self.polls = 0
        self.polls_before_done = polls_before_done
        self.cancels = 0

    async def submit(self, lines, upstream_model, window) -> NativeSubmission:
        self.submitted.append([line.custom_id for line in lines])
        return NativeSubmission("upstream-batch-1", None, {"model": upstream_model, "window": window})

    async def state(self, submission):
        assert submission.upstream_batch_id == "upstream-batch-1"
        self.polls += 1
        if self.cancels:
            return "cancelled" if self.polls > 3 else "cancelling"
        return "completed" if self.polls > self.polls_before_done else "in_progress"

    async def results(self, submission):
        if self.cancels:  # "a" ran before the cancel took effect: the provider bills it
            return [NativeResult("a", 200, {"id": "msg_a", "usage": {"input_tokens": 10, "output_tokens": 5}})]
        return [NativeResult("a", 200, {"id": "msg_a", "usage": {"input_tokens": 10, "output_tokens": 5}}),
                NativeResult("b", 400, None, {"code": "invalid_request", "message": "max_tokens too large"})]

    async def cancel(self, submission) -> None:
        self.cancels += 1
        self.polls = 0


class RecordingLines:
    def __init__(self) -> None:
        self.recorded: list[tuple[LineRun, NativeResult]] = []
        self.unsent: list[tuple[str, str]] = []

    async def run(self, run: LineRun) -> LineOutcome:
        raise AssertionError("a native line is never run through routing")

    async def record_unsent(self, run: LineRun, state: str, message: str) -> None:
        self.unsent.append((run.line.custom_id, state))

    async def record_native(self, run: LineRun, result: NativeResult) -> LineOutcome:
        self.recorded.append((run, result))
        if result.status_code == 200:
            return LineOutcome(200, result.body, Decimal("0.0000375"), "batch")
        return LineOutcome(result.status_code, None, Decimal(0), "batch", result.error)


async def _make_batch(db: BatchDatabase, files: FileStore, store: BatchStore, table, pricer) -> str:
    lines = [BatchLine(i, cid, "/v1/messages", "claude",
                       {"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
             for i, cid in enumerate(("a", "b"))]
    content = b"".join(orjson.dumps({"custom_id": line.custom_id, "method": "POST", "url": line.endpoint,
                                     "body": line.body}) + b"\n" for line in lines)
    stored = await files.put("", "batch", "in.jsonl", content)
    plan = plan_batch(lines, table, pricer, datetime.now(timezone.utc), "24h", native=lambda dep, endpoint: True)
    assert {p.mode for p in plan.lines} == {"native"}
    record = BatchRecord("batch_native1", "", "openai", "/v1/messages", stored.id, "24h", "validating", 0,
                         int(plan.deadline.timestamp()), total=2)
    await db.run(lambda d: store.create_sync(d, record, lines, plan.lines))
    return record.id


def test_native_share_is_submitted_once_polled_after_a_restart_and_recorded(tmp_path: Path):
    async def scenario() -> None:
        pricer = DeploymentPricer(Catalog.load())
        table = RouteTable(CONFIG, pricer.catalog, resolve_secrets=False)
        db = BatchDatabase(tmp_path / "ledger.db", None)
        files, store = FileStore(db, tmp_path / "files"), BatchStore(db)
        batch_id = await _make_batch(db, files, store, table, pricer)
        client, lines = FakeNativeClient(polls_before_done=2), RecordingLines()
        settings = BatchSettings(poll_s=0.02, lease_s=1)
        admission = Admission(CONFIG, pricer)

        first = BatchExecutor(store, files, lines, settings, admission, lambda: table, lambda dep: client)
        await first.start()
        while not await store.submissions(batch_id):
            await asyncio.sleep(0.01)
        await first.stop()  # a restart: the lease is released, the upstream batch id is stored
        assert client.submitted == [["a", "b"]]

        second = BatchExecutor(store, files, lines, settings, admission, lambda: table, lambda dep: client)
        await second.start()
        for _ in range(500):
            record = await store.get(batch_id)
            if record is not None and record.status == "completed":
                break
            await asyncio.sleep(0.01)
        await second.stop()
        assert client.submitted == [["a", "b"]], "a restart resubmitted the share"
        assert record is not None and record.status == "completed"
        assert (record.completed, record.failed, record.cost_usd) == (1, 1, Decimal("0.0000375"))
        assert [(run.request_id, run.rate, run.deployment) for run, _ in lines.recorded] == [
            (f"{batch_id}-0", "batch", "claude"), (f"{batch_id}-1", "batch", "claude")]
        output = orjson.loads(await files.content(record.output_file_id, ""))
        assert (output["custom_id"], output["response"]["body"]["id"]) == ("a", "msg_a")
        error = orjson.loads(await files.content(record.error_file_id, ""))
        assert (error["custom_id"], error["error"]["code"], error["response"]["status_code"]) == (
            "b", "invalid_request", 400)
        submissions = await store.submissions(batch_id)
        assert submissions["claude"][0].extra == {"model": "claude-fable-5.1", "window": "24h"}
        db.close()

    asyncio.run(scenario())


def test_cancelling_a_native_batch_cancels_upstream_once_and_still_bills_what_ran(tmp_path: Path):
    async def scenario() -> None:
        pricer = DeploymentPricer(Catalog.load())
        table = RouteTable(CONFIG, pricer.catalog, resolve_secrets=False)
        db = BatchDatabase(tmp_path / "ledger.db", None)
        files, store = FileStore(db, None), BatchStore(db)
        batch_id = await _make_batch(db, files, store, table, pricer)
        client, lines = FakeNativeClient(polls_before_done=10_000), RecordingLines()
        runner = BatchExecutor(store, files, lines, BatchSettings(poll_s=0.02), Admission(CONFIG, pricer),
                               lambda: table, lambda dep: client)
        await runner.start()
        while not await store.submissions(batch_id):
            await asyncio.sleep(0.01)
        await store.request_cancel(batch_id)
        for _ in range(500):
            record = await store.get(batch_id)
            if record is not None and record.status == "cancelled":
                break
            await asyncio.sleep(0.01)
        await runner.stop()
        db.close()
        assert record is not None and record.status == "cancelled"
        assert client.cancels == 1
        assert record.states == {"done": 1, "cancelled": 1} and record.cost_usd == Decimal("0.0000375")
        assert [run.line.custom_id for run, _ in lines.recorded] == ["a"]
        assert lines.unsent == [("b", "cancelled")]  # its own row, saying so

    asyncio.run(scenario())

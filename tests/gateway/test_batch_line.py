"""A native batch upstream's result recorded as a line's own request, in process: admitted as the
batch's key, priced at the catalog's batch tier, one ledger row carrying the batch id and rate, and no
upstream call; a line the upstream failed is a row that says so, at no cost."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tollway.batch.types import BatchLine, LineRun, NativeResult
from tollway.config import Config
from tollway.gateway import handler
from tollway.gateway.app import Gateway
from tollway.gateway.batch_line import GatewayLines

LINE = BatchLine(0, "first", "/v1/messages", "claude",
                 {"model": "claude", "max_tokens": 300, "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def gateway(tmp_path) -> Gateway:
    config = Config.model_validate({
        "providers": {"an": {"kind": "anthropic", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"fable": {"provider": "an", "model": "claude-fable-5.1"}},
        "route_groups": {"claude": {"deployments": ["fable"]}},
        "ledger": {"path": str(tmp_path / "ledger.db")},
    })
    return Gateway(config)


def _record(gateway: Gateway, result: NativeResult, monkeypatch):
    async def no_call(*args, **kwargs):
        raise AssertionError("a native result is recorded without calling anything")

    monkeypatch.setattr(handler.calls, "call", no_call)
    run = LineRun("batch_x", "", LINE, "batch_x-0", "batch", datetime(2026, 12, 8, 3, tzinfo=timezone.utc), "fable")
    outcome = asyncio.run(GatewayLines(lambda: gateway.services).record_native(run, result))
    [row] = list(gateway.ledger._queue)
    return outcome, row


def test_a_native_result_is_priced_at_the_batch_tier_with_its_own_row(gateway, monkeypatch):
    body = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "hello"}],
            "usage": {"input_tokens": 1000, "output_tokens": 200}}
    outcome, row = _record(gateway, NativeResult("first", 200, body), monkeypatch)
    # claude-fable-5.1: $10 / $50 per million, batch tier half: 1000 x $5/M + 200 x $25/M
    assert outcome.cost_usd == Decimal("0.01") and outcome.status_code == 200 and outcome.body == body
    assert (row.id, row.batch_id, row.price_rate, row.cost_usd) == ("batch_x-0", "batch_x", "batch", "0.01")
    assert (row.endpoint, row.status, row.http_status, row.deployment) == ("messages", "ok", 200, "fable")
    assert row.ts.startswith("2026-12-08T03:00:00") and (row.prompt_tokens, row.completion_tokens) == (1000, 200)


def test_a_line_the_upstream_failed_is_an_error_row_at_no_cost(gateway, monkeypatch):
    failed = NativeResult("first", 400, None, {"code": "invalid_request", "message": "max_tokens too large"})
    outcome, row = _record(gateway, failed, monkeypatch)
    assert outcome.status_code == 400 and outcome.error["message"] == "max_tokens too large"
    assert (row.status, row.http_status, row.cost_usd, row.batch_id) == ("client_error", 400, "0", "batch_x")


def test_a_line_never_sent_still_has_its_row(gateway):
    run = LineRun("batch_x", "", LINE, "batch_x-0", "standard", datetime(2026, 12, 8, 3, tzinfo=timezone.utc))
    asyncio.run(GatewayLines(lambda: gateway.services).record_unsent(run, "cancelled", "cancelled before sending"))
    [row] = list(gateway.ledger._queue)
    assert (row.id, row.batch_id, row.status, row.http_status, row.cost_usd) == (
        "batch_x-0", "batch_x", "cancelled", 499, "0")
    assert (row.requested_model, row.route_group, row.error, row.deployment) == (
        "claude", "claude", "cancelled before sending", "")

"""A row tells the truth by construction: in process, a fault nobody foresaw inside the request's life
gives the client an OpenAI-shaped 500 and leaves exactly one row saying `error`/500 with the fault's
class, never the `ok`/200 a row would say by default; a fault while accounting never costs the row."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tollway.config import Config
from tollway.gateway import handler
from tollway.gateway.app import Gateway
from tollway.gateway.exchange import LowerCaseHeaders
from tollway.gateway.handler import RequestLife


class Exchange:
    def __init__(self, body: dict, request_id: str = "truth-1") -> None:
        self.headers = LowerCaseHeaders({"x-request-id": request_id})
        self.body = orjson.dumps(body)
        self.answer: tuple[int, dict, bytes] | None = None

    async def read_body(self) -> bytes:
        return self.body

    def respond(self, status: int, headers: dict, body: bytes) -> None:
        self.answer = (status, headers, body)

    async def start_stream(self, headers):  # pragma: no cover - not reached
        raise AssertionError("no stream in these tests")

    def client_gone(self) -> bool:
        return False


@pytest.fixture
def gateway(tmp_path) -> Gateway:
    config = Config.model_validate({
        "providers": {"ds": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"flash": {"provider": "ds", "model": "deepseek-flash", "price": {"input": "1", "output": "2"}}},
        "route_groups": {"chat": {"deployments": ["flash"]}},
        "ledger": {"path": str(tmp_path / "ledger.db")},
    })
    return Gateway(config)


def serve(gw: Gateway, x: Exchange) -> None:
    async def scenario() -> None:
        await RequestLife(gw.services, x, "chat").handle()

    asyncio.run(scenario())


def queued(gw: Gateway) -> list:
    return list(gw.ledger._queue)


BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def test_an_unforeseen_fault_is_a_500_and_a_row_that_says_so(gateway, monkeypatch):
    async def broken_plan(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(gateway.router, "plan", broken_plan)
    x = Exchange(BODY)
    serve(gateway, x)
    status, headers, body = x.answer
    assert status == 500 and orjson.loads(body)["error"]["code"] == "internal_error"
    assert headers["x-request-id"] == "truth-1"
    [row] = queued(gateway)
    assert (row.id, row.status, row.http_status) == ("truth-1", "error", 500)
    assert row.error == "internal_error: RuntimeError"
    assert gateway.in_flight.count == 0


def test_a_fault_in_the_upstream_call_is_a_500_row_not_ok(gateway, monkeypatch):
    async def broken_call(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(handler.calls, "call", broken_call)
    x = Exchange(BODY, "truth-2")
    serve(gateway, x)
    assert x.answer[0] == 500
    [row] = queued(gateway)
    assert (row.status, row.http_status, row.error) == ("error", 500, "internal_error: KeyError")


def test_faults_while_accounting_keep_the_row_and_the_answer(gateway, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("observer bug")

    monkeypatch.setattr(gateway.observer, "record", broken)
    monkeypatch.setattr(gateway.router, "finished", broken)
    monkeypatch.setattr(RequestLife, "_features_json", broken)  # the full row cannot be built
    x = Exchange({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, "truth-3")
    serve(gateway, x)
    assert x.answer[0] == 404
    [row] = queued(gateway)
    assert (row.id, row.status, row.http_status) == ("truth-3", "client_error", 404)


def test_a_request_cancelled_midway_is_a_cancelled_row(gateway, monkeypatch):
    async def slow_plan(*args, **kwargs):
        await asyncio.sleep(10)

    monkeypatch.setattr(gateway.router, "plan", slow_plan)

    async def scenario() -> None:
        task = asyncio.create_task(RequestLife(gateway.services, Exchange(BODY, "truth-4"), "chat").handle())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    [row] = queued(gateway)
    assert (row.status, row.http_status) == ("cancelled", 499)

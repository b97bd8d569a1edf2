"""Gateway configs with keys and budgets on the emulator, a small client for the admin API, and an
in-process Admission with keys for the tests that need no gateway."""

from __future__ import annotations

import asyncio
import copy
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import orjson
import psycopg
import psycopg.rows
import redis
import yaml
from aiohttp.test_utils import make_mocked_request

from tests.fixtures.gateway import GatewayHandle
from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY, free_port, running
from tollway.accounting.admission import Admission
from tollway.accounting.keys.records import KeySpec, new_record, new_secret
from tollway.config import Config
from tollway.core.money import to_nano
from tollway.core.request import parse_request
from tollway.ledger.schema import LedgerRow

ADMIN_KEY = "admin-key-for-tests-7f3a"
ENV = {**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY}
# Prices chosen so every request costs a few cents in exact decimals: $1000/M input, $2000/M output.
PRICE = {"input": "1000", "output": "2000"}


def budget_config(emu, **sections) -> dict:
    """DeepSeek then Qwen on the emulator, both priced at PRICE, the admin API on, plus `sections`."""
    config = copy.deepcopy(emulator_config(emu, server={"admin_key_env": "TOLLWAY_ADMIN_KEY"}))
    for dep in config["deployments"].values():
        dep["price"] = dict(PRICE)
    config.update(sections)
    return config


def request_cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    return (prompt_tokens * Decimal(PRICE["input"]) + completion_tokens * Decimal(PRICE["output"])).scaleb(-6)


class Admin:
    """The admin API of one gateway."""

    def __init__(self, gateway, key: str = ADMIN_KEY) -> None:
        self.http = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def create_key(self, **fields) -> tuple[str, str]:
        reply = self.http.post("/admin/keys", json={"name": "test", **fields})
        assert reply.status_code == 201, reply.text
        body = reply.json()
        return body["id"], body["secret"]

    def revoke(self, key_id: str) -> dict:
        reply = self.http.post(f"/admin/keys/{key_id}/revoke")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def budgets(self) -> list[dict]:
        reply = self.http.get("/admin/budgets")
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    def budget(self, key_id: str, window: str = "daily") -> dict:
        found = self.find_budget(key_id, window)
        assert found is not None, f"no {window} budget for key {key_id}"
        return found

    def find_budget(self, key_id: str, window: str = "daily") -> dict | None:
        found = [b for b in self.budgets() if b["id"] == key_id and b["window"] == window]
        return found[0] if found else None

    def settled_budget(self, key_id: str, window: str = "daily", timeout: float = 10.0) -> dict:
        """The key's budget once no request holds anything on it (settles run in the background)."""
        def settled() -> dict | None:
            found = self.budget(key_id, window)
            return found if found["reserved_usd"] == "0" else None
        return wait_for(settled, timeout)

    def events(self) -> list[dict]:
        return self.http.get("/admin/events").json()["data"]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def start_gateway(stack: ExitStack, tmp: Path, config: dict, name: str = "gw", env: dict | None = None,
                  extra_args: tuple[str, ...] = ()) -> GatewayHandle:
    """`tollway serve` as a real process, stopped when `stack` closes (for module-scoped setups)."""
    return start_gateways(stack, tmp, config, [name], env, extra_args)[0]


def start_gateways(stack: ExitStack, tmp: Path, config: dict, names: list[str], env: dict | None = None,
                   extra_args: tuple[str, ...] = ()) -> list[GatewayHandle]:
    """Several replicas of one config, started side by side (a start is mostly waiting for imports)."""
    config_path = tmp / f"{names[0]}.yaml"
    config_path.write_text(yaml.safe_dump(config))

    def start(name: str):
        port, ledger, log = free_port(), tmp / f"{name}-ledger.db", tmp / f"{name}.log"
        cmd = [*TOLLWAY, "serve", "--config", str(config_path), "--port", str(port), "--ledger", str(ledger),
               *extra_args]
        context = running(cmd, f"http://127.0.0.1:{port}/healthz", log, env={**ENV, **(env or {})})
        return context, GatewayHandle(port, ledger, log, context.__enter__())

    with ThreadPoolExecutor(len(names)) as pool:
        futures = [pool.submit(start, name) for name in names]
        started = []
        for future in futures:
            try:
                started.append(future.result())
            except Exception:
                for context, _ in started:
                    context.__exit__(None, None, None)
                raise
    for context, _ in started:
        stack.push(context)
    return [handle for _, handle in started]


@dataclass
class Outcome:
    request_id: str
    status: int          # HTTP status; 0 when the connection failed
    code: str = ""       # the error code of a refusal


async def send_load(gateways: list, secret: str, count: int, spread_s: float, max_tokens: int = 20,
                    prefix: str = "load") -> list[Outcome]:
    """`count` chat requests spread evenly over `spread_s`, alternating gateways, every other one streamed."""
    clients = [openai.AsyncOpenAI(base_url=g.base_url, api_key=secret, max_retries=0, timeout=30) for g in gateways]

    async def one(i: int) -> Outcome:
        await asyncio.sleep(spread_s * i / count)
        client, request_id = clients[i % len(clients)], f"{prefix}-{i}"
        body = {**chat(), "max_tokens": max_tokens, "extra_headers": {"x-request-id": request_id}}
        try:
            if i % 2:
                stream = await client.chat.completions.create(**body, stream=True,
                                                              stream_options={"include_usage": i % 4 == 1})
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(**body)
        except openai.APIStatusError as exc:
            return Outcome(request_id, exc.status_code, (exc.body or {}).get("code", "") if isinstance(exc.body, dict) else "")
        except openai.APIError as exc:
            return Outcome(request_id, 200, f"stream: {exc}")
        return Outcome(request_id, 200)

    try:
        return list(await asyncio.gather(*(one(i) for i in range(count))))
    finally:
        for client in clients:
            await client.close()


def ledger_rows(database_url: str, key_id: str | None = None) -> list[dict]:
    """Rows of the PostgreSQL ledger (every replica's), optionally for one key."""
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        if key_id is None:
            return conn.execute("SELECT * FROM requests ORDER BY ts").fetchall()
        return conn.execute("SELECT * FROM requests WHERE key_id = %s ORDER BY ts", (key_id,)).fetchall()


def redis_budget(redis_url: str, key_id: str, window: str = "daily") -> tuple[int, int]:
    """(spent, reserved) nano-dollars straight from Redis for the key's current period."""
    from tollway.accounting.periods import PeriodClock

    period = PeriodClock().current(window).id  # type: ignore[arg-type]
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        state = client.hmget(f"tw:bud:key:{key_id}:{window}:{period}", "spent", "reserved")
    return int(state[0] or 0), int(state[1] or 0)


def exact_nano_sum(rows: list[dict]) -> int:
    """The ledger's spend as the counters count it: each row's exact cost in nano-dollars, rounded up."""
    return sum(to_nano(Decimal(str(row["cost_usd"]))) for row in rows)


def wait_for_rows(database_url: str, key_id: str, count: int, timeout: float = 15.0) -> list[dict]:
    """The key's ledger rows once there are `count` of them (rows are written in batches, maybe spooled)."""
    found: list[dict] = []

    def enough() -> bool:
        found[:] = ledger_rows(database_url, key_id)
        return len(found) >= count

    wait_for(enough, timeout, interval=0.1)
    return found


def wait_for_settled(redis_url: str, key_id: str, timeout: float = 10.0) -> tuple[int, int]:
    """(spent, 0) from Redis once no hold is left on the key's daily budget."""
    state: list[tuple[int, int]] = []

    def settled() -> bool:
        state[:] = [redis_budget(redis_url, key_id)]
        return state[0][1] == 0

    wait_for(settled, timeout)
    return state[0]


# In-process admission (no network)

def config(tmp_path: Path, **sections) -> Config:
    provider = {"kind": "vllm", "base_url": "http://127.0.0.1:1/v1"}
    return Config.model_validate({
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"p": provider},
        "deployments": {"a": {"provider": "p", "model": "m", "price": {"input": "1000", "output": "2000"}},
                        "b": {"provider": "p", "model": "n", "price": {"input": "1", "output": "1"}}},
        "route_groups": {"chat": {"deployments": ["a"]}, "cheap": {"deployments": ["b"]}},
        **sections,
    })


def chat_request(max_tokens: int = 20):
    return parse_request("chat", orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                                               "max_tokens": max_tokens}))


def row(cost: str) -> LedgerRow:
    return LedgerRow(id="r", ts="", endpoint="chat", requested_model="chat", status="ok", http_status=200,
                     deployment="a", cost_usd=cost, prompt_tokens=7, completion_tokens=16)


def bearer(token: str):
    return make_mocked_request("POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"})


async def started(cfg: Config, *specs: KeySpec) -> tuple[Admission, list[str]]:
    admission = Admission(cfg)
    await admission.start()
    secrets = []
    for spec in specs:
        key_id, secret = new_secret()
        admission.key_changed(admission.cache.store.create(new_record(key_id, secret, spec)))
        secrets.append(secret)
    return admission, secrets

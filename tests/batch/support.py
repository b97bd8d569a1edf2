"""Helpers of the batch tests: a gateway config on an emulator, input files, the fake batch clock."""

from __future__ import annotations

import io
import time
from datetime import datetime, timezone

import orjson

PROVIDER_KEYS = {"DS_KEY": "sk-ds-test-secret-0001", "QW_KEY": "sk-qw-test-secret-0002"}
# Tuesday 2026-12-08, 04:00 UTC = 12:00 Beijing: DeepSeek's morning peak (09:00-12:00) ends, off-peak begins
OFF_PEAK_STARTS = datetime(2026, 12, 8, 4, 0, tzinfo=timezone.utc)


def batch_config(emu, **batch) -> dict:
    """`chat` on DeepSeek Flash (off-peak pricing), `now` on Qwen (no time-of-day price)."""
    timeouts = {"connect_s": 2, "first_byte_s": 5, "between_chunks_s": 2, "response_s": 10}
    return {
        "server": {"request_deadline_s": 30},
        "providers": {
            "deepseek": {"kind": "deepseek", "base_url": emu.base_url("deepseek"), "api_key_env": "DS_KEY",
                         "jurisdiction": "cn", "timeouts": timeouts},
            "qwen": {"kind": "qwen", "base_url": emu.base_url("qwen"), "api_key_env": "QW_KEY",
                     "jurisdiction": "sg", "timeouts": timeouts},
        },
        "deployments": {
            "ds-flash": {"provider": "deepseek", "model": "deepseek-flash", "context_window": 8000},
            "qwen-plus": {"provider": "qwen", "model": "qwen3.5-plus", "context_window": 8000},
        },
        "route_groups": {"chat": {"deployments": ["ds-flash"]}, "now": {"deployments": ["qwen-plus"]}},
        "batch": {"poll_s": 0.2, "lease_s": 3, **batch},
    }


def clock_env(before_boundary_s: float) -> dict[str, str]:
    """The gateway's batch clock set so it reads `before_boundary_s` seconds before off-peak begins
    (TOLLWAY_BATCH_CLOCK_OFFSET_S, a test-only knob, docs/batch.md)."""
    offset = OFF_PEAK_STARTS.timestamp() - before_boundary_s - time.time()
    return {**PROVIDER_KEYS, "TOLLWAY_BATCH_CLOCK_OFFSET_S": f"{offset:.3f}"}


def line(custom_id: str, model: str = "chat", content: str | None = None, url: str = "/v1/chat/completions",
         **body) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": content or f"say {custom_id}"}],
                     "max_tokens": 50, **body}}


def jsonl(lines: list[dict]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in lines)


def upload(client, lines: list[dict] | bytes, name: str = "input.jsonl"):
    content = lines if isinstance(lines, bytes) else jsonl(lines)
    return client.files.create(file=(name, io.BytesIO(content)), purpose="batch")


def wait_for(client, batch_id: str, statuses: tuple[str, ...] = ("completed", "failed", "expired", "cancelled"),
             timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses or time.monotonic() > deadline:
            return batch
        time.sleep(0.2)


def sent_contents(emu, model: str) -> list[str]:
    """The last user message of every request the emulator got for `model`."""
    return [entry["body"]["messages"][-1]["content"] for entry in emu.requests(model=model)]


ADMIN_KEY = "admin-key-for-batch-tests-5c1d"


def with_admin(config: dict) -> dict:
    config["server"] = {**config.get("server", {}), "admin_key_env": "TOLLWAY_ADMIN_KEY"}
    return config


def create_key(gw, **fields) -> tuple[str, str]:
    """A virtual key through the admin API: (id, secret)."""
    import httpx

    reply = httpx.post(f"{gw.url}/admin/keys", json={"name": "batch-test", **fields},
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"], reply.json()["secret"]


def admin_patch_key(gw, key_id: str, **fields) -> None:
    import httpx

    reply = httpx.patch(f"{gw.url}/admin/keys/{key_id}", json=fields,
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert reply.status_code == 200, reply.text


def table_count(gw, table: str) -> int:
    """Rows of a batch table in the gateway's SQLite ledger file."""
    import sqlite3

    conn = sqlite3.connect(f"file:{gw.ledger}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()

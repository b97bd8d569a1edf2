"""Helpers for the observability tests: a loopback webhook receiver, fixed ledgers, gateway configs."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.emulator import EmulatorHandle
from tests.fixtures.gateway import GatewayHandle
from tests.gateway.support import emulator_config
from tests.processes import TOLLWAY, free_port, running
from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow
from tollway.ledger.sqlite import open_sqlite

ADMIN_KEY = "admin-key-for-tests-7781"


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every POSTed JSON body (Slack-style webhook)."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.bodies)

    def alerts(self) -> list[dict]:
        return [body["tollway"] for body in self.bodies]


def write_ledger(path: Path, rows: list[LedgerRow]) -> None:
    """A ledger file holding exactly these rows, written with the gateway's own schema."""
    conn = open_sqlite(path)
    sql = f"INSERT INTO requests ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})"
    values = []
    for row in rows:
        record = [getattr(row, name) for name in LEDGER_COLUMNS]
        record[LEDGER_COLUMNS.index("attempts")] = orjson.dumps(row.attempts).decode()
        values.append(record)
    with conn:
        conn.executemany(sql, values)
    conn.close()


def row(id: str, ts: str, *, provider: str = "deepseek", model: str = "deepseek-flash", deployment: str = "ds-flash",
        group: str = "chat", cost: str = "0", status: str = "ok", prompt: int = 0, completion: int = 0,
        cached: int = 0, ttft: float | None = None, latency: float | None = None, attempts: list[dict] | None = None,
        **extra) -> LedgerRow:
    """A ledger row with sensible defaults; `attempts` defaults to one ok attempt on `deployment`."""
    if attempts is None:
        attempts = [{"deployment": deployment, "provider": provider, "outcome": "ok", "latency_ms": latency or 0}] \
            if deployment else []
    return LedgerRow(id=id, ts=ts, endpoint="chat", requested_model=extra.pop("requested_model", group), status=status,
                     http_status=extra.pop("http_status", 200 if status == "ok" else 502), route_group=group,
                     deployment=deployment, provider=provider, upstream_model=model, attempts=attempts,
                     prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion, cost_usd=cost,
                     ttft_ms=ttft, latency_ms=latency, usage_source="reported" if prompt else "", **extra)


def observed_config(emu, observe: dict | None = None, **kwargs) -> dict:
    """The gateway tests' emulator config, with an admin key and fast observer timings."""
    config = emulator_config(emu, **kwargs)
    config["server"]["admin_key_env"] = "TOLLWAY_ADMIN_KEY"
    config["observe"] = {"drain_every_s": 0.1, **(observe or {})}
    return config


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it: {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout}s")
        time.sleep(0.05)


def start_gateway(stack: ExitStack, tmp_path: Path, config: dict, env: dict, ledger: Path | None = None,
                  name: str = "gateway") -> GatewayHandle:
    """A gateway that lives as long as `stack` (for module-scoped fixtures, which the factories are not)."""
    config_path = tmp_path / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    port, log = free_port(), tmp_path / f"{name}.log"
    ledger = ledger or tmp_path / f"{name}.db"
    cmd = [*TOLLWAY, "serve", "--config", str(config_path), "--port", str(port), "--ledger", str(ledger)]
    proc = stack.enter_context(running(cmd, f"http://127.0.0.1:{port}/healthz", log, env=env))
    return GatewayHandle(port, ledger, log, proc)


def start_emulator(stack: ExitStack, tmp_path: Path, config: dict | None) -> EmulatorHandle:
    port = free_port()
    args = [*TOLLWAY, "emulate", "--host", "127.0.0.1", "--port", str(port)]
    if config is not None:
        path = tmp_path / f"emulator-{port}.yaml"
        path.write_text(yaml.safe_dump(config))
        args += ["--config", str(path)]
    url = f"http://127.0.0.1:{port}"
    proc = stack.enter_context(running(args, f"{url}/healthz", tmp_path / f"emulator-{port}.log"))
    return EmulatorHandle(url, tmp_path / f"emulator-{port}.log", proc)


def audit_rows(ledger: Path) -> list[dict]:
    """The admin audit log in a SQLite ledger file, newest first (ledger/audit_store.py's own reader)."""
    from tollway.ledger.audit_store import AuditQuery, SqliteAuditStore

    store = SqliteAuditStore(ledger)
    try:
        return store.read(AuditQuery(limit=100_000))
    finally:
        store.close()

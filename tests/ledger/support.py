"""Raw-socket requests and ledger readers for the ledger fault tests: bytes no HTTP library would send."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import orjson
import psycopg
import psycopg.rows

POISON = "poison"  # the model name the test's store refuses (a trigger or CHECK constraint installed by the test)


def raw_chat(port: int, request_id: bytes, model: str = "chat") -> int:
    """POST one chat request on its own connection, the x-request-id header as raw bytes; the status."""
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"x-request-id: " + request_id + b"\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def refuse_poison_sqlite(ledger: Path) -> None:
    """Make SQLite refuse rows for model POISON, as a store refuses a value it cannot take."""
    conn = sqlite3.connect(str(ledger))
    conn.execute(f"CREATE TRIGGER refuse_poison BEFORE INSERT ON requests WHEN NEW.requested_model = '{POISON}' "
                 "BEGIN SELECT RAISE(ABORT, 'poisoned row refused by the test'); END")
    conn.commit()
    conn.close()


def refuse_poison_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE requests ADD CONSTRAINT refuse_poison CHECK (requested_model <> '{POISON}')")


def sqlite_table(ledger: Path, table: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def postgres_table(url: str, table: str) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return list(conn.execute(f"SELECT * FROM {table}"))


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)
    return value

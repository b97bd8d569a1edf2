"""Raw HTTP for emulator tests: exact bodies, headers and SSE events, including broken streams.

The openai SDK hides the bytes; these checks need them (field placement, envelope shapes, whether a
stream ended with [DONE] or was cut).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Stream:
    status: int
    headers: dict[str, str]
    events: list[tuple[str | None, Any]] = field(default_factory=list)  # (event name, parsed data or "[DONE]")
    comments: list[str] = field(default_factory=list)
    complete: bool = True  # False when the connection dropped before the body ended

    @property
    def data(self) -> list[Any]:
        return [data for _, data in self.events]

    @property
    def chunks(self) -> list[dict]:
        return [data for data in self.data if data != "[DONE]"]


def _connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30), parts.path + (
        f"?{parts.query}" if parts.query else "")


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
    conn, path = _connect(url)
    try:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, payload, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed)
    finally:
        conn.close()


def stream(url: str, body: dict, headers: dict[str, str] | None = None) -> Stream:
    """POST with stream=true and collect every SSE event until the body ends or the connection drops."""
    conn, path = _connect(url)
    try:
        conn.request("POST", path, json.dumps({**body, "stream": True}).encode(),
                     {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        result = Stream(resp.status, {k.lower(): v for k, v in resp.getheaders()})
        if resp.status != 200:
            result.events.append((None, json.loads(resp.read())))
            return result
        raw = b""
        try:
            while chunk := resp.read1(65536):
                raw += chunk
        except (http.client.IncompleteRead, ConnectionError):
            result.complete = False
        _parse_sse(raw.decode(), result)
        return result
    finally:
        conn.close()


def _parse_sse(text: str, result: Stream) -> None:
    for block in text.split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith(":"):
                result.comments.append(line[1:].strip())
            elif line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                payload = line[len("data: "):]
                data = payload if payload == "[DONE]" else json.loads(payload)
        if data is not None:
            result.events.append((name, data))


def chat_body(model: str = "m", content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """Any method with an optional JSON body; the answer parsed as JSON when it is JSON."""
    conn, path = _connect(url)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed)
    finally:
        conn.close()


def batch_settings(emulator_url: str, **settings: Any) -> dict[str, Any]:
    """Set the emulator's default batch settings (validating_s, duration_s, fail_every, ...)."""
    reply = call("PUT", f"{emulator_url}/_emulator/batches", settings)
    assert reply.status == 200, reply.body
    return reply.body["settings"]


def batch_executions(emulator_url: str) -> dict[str, int]:
    """How many times the emulator ran each custom_id."""
    return call("GET", f"{emulator_url}/_emulator/batches").body["executions"]

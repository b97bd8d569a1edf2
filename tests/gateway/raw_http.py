"""A raw HTTP/1.1 client for tests that must control every byte: pipelining, smuggling, bad encodings.

A library would hide (or refuse to send) what these tests are about; this is a socket and an httptools
response parser that collects the answers as they arrive, in order.
"""

from __future__ import annotations

import socket
import time

import httptools
import orjson


class Reply:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.complete = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> dict:
        return orjson.loads(self.body)


class Conversation:
    """A client socket and an httptools response parser: the answers as they arrive, in order."""

    def __init__(self, port: int, http10: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.replies: list[Reply] = []
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self.raw = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, done, timeout: float = 10.0) -> None:
        """Read until `done()` holds or the server closes; fail on timeout."""
        deadline = time.monotonic() + timeout
        while not done() and not self.closed:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"timed out; received so far: {self.raw[-2000:]!r}") from None
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                if self.replies and not self.replies[-1].complete and self._parser is not None:
                    self._parser.feed_data(b"")  # a body delimited by the close
                break
            self.raw += data
            self._parser.feed_data(data)

    def replies_done(self, n: int) -> list[Reply]:
        self.read_until(lambda: sum(r.complete for r in self.replies) >= n)
        return self.replies

    def server_closed(self, timeout: float = 5.0) -> bool:
        self.read_until(lambda: False, timeout) if not self.closed else None
        return self.closed

    def close(self) -> None:
        self.sock.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.replies.append(Reply())

    def on_status(self, status: bytes) -> None:
        self.replies[-1].status = self._parser.get_status_code()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.replies[-1].headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.replies[-1].chunks.append(body)

    def on_message_complete(self) -> None:
        self.replies[-1].complete = True
        if self.replies[-1].status == 100:  # an interim answer: the parser expects the real one next
            self._parser = httptools.HttpResponseParser(self)


def post(path: str, body: bytes | dict, request_id: str = "", extra: str = "", version: str = "1.1") -> bytes:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    rid = f"x-request-id: {request_id}\r\n" if request_id else ""
    return (f"POST {path} HTTP/{version}\r\nHost: t\r\nContent-Type: application/json\r\n{rid}{extra}"
            f"Content-Length: {len(raw)}\r\n\r\n").encode() + raw


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()

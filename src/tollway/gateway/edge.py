"""The edge contract: what both HTTP servers promise about paths, methods, request ids and refusals.

The hot-path server (http_server.py) and the aiohttp application behind it must answer the same input
the same way, or a hostile client picks whichever is weaker. So the facts they share live here: which
paths exist and with which methods, the OpenAI-shaped 404/405 naming what is served, what a client's
`x-request-id` may be, and the hand-off of a refusal to aiohttp when it owns a connection. Header bytes
are read as ISO-8859-1 on both sides (RFC 9110 §5.5: obs-text is opaque octets), so no header value can
fail to decode.
"""

from __future__ import annotations

import re
import secrets
from typing import Callable, Iterable, TypeGuard

from tollway.core.errors import GatewayError

HOT_PATHS = {b"/v1/chat/completions": "chat", b"/v1/completions": "completions", b"/v1/embeddings": "embeddings",
             b"/v1/messages": "messages", b"/v1/messages/count_tokens": "messages.count_tokens",
             b"/v1/responses": "responses"}
SIMPLE_GETS = {b"/v1/models": "/v1/models", b"/healthz": "/healthz", b"/readyz": "/readyz"}
SERVED = ("POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings", "POST /v1/messages",
          "POST /v1/messages/count_tokens", "POST /v1/responses", "GET /v1/responses/{id}",
          "DELETE /v1/responses/{id}", "GET /v1/models",
          "GET /healthz", "GET /readyz", "GET /metrics", "GET /dashboard", "/admin/ (admin key)")
REFUSAL_ENDPOINT = "edge"  # the ledger's endpoint for a request refused before it reached an endpoint
MAX_REQUEST_ID = 128
_REQUEST_ID = re.compile(r"[!-~]{1,%d}" % MAX_REQUEST_ID)  # visible ASCII: no space, control or 8-bit byte
_SHOWN_PATH = 120  # how much of a refused path a message repeats

# The aiohttp side answers a refusal in turn through this route; the token is drawn per process, so no
# client can reach it, and each refusal is handed over under a one-time name of its own.
EDGE_ERROR_PREFIX = f"/.tollway-edge/{secrets.token_hex(16)}/"
_pending: dict[str, tuple[GatewayError, str | None]] = {}
_MAX_PENDING = 1024


def valid_request_id(value: str | None) -> TypeGuard[str]:
    """A client's `x-request-id` is kept only if it is 1-128 visible ASCII characters: it is echoed in a
    header, logged and stored, so anything else is replaced by one of the gateway's own ids."""
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


def not_found(method: bytes, path: bytes) -> GatewayError:
    shown = path.decode("latin-1")[:_SHOWN_PATH].encode("unicode_escape").decode("ascii")
    return GatewayError(404, f"Unknown path: {method.decode('latin-1')} {shown}. This gateway serves "
                             f"{', '.join(SERVED)}.", "invalid_request_error", "unknown_url")


def method_not_allowed(method: bytes, path: bytes, allowed: str) -> GatewayError:
    return GatewayError(405, f"{path.decode('latin-1')} takes {allowed}, not {method.decode('latin-1')[:16]}.",
                        "invalid_request_error", "method_not_allowed", headers={"Allow": allowed})


def refusal_for(method: bytes, path: bytes) -> GatewayError:
    """404 or 405 for a request no route takes."""
    if path in HOT_PATHS:
        return method_not_allowed(method, path, "POST")
    if path in SIMPLE_GETS:
        return method_not_allowed(method, path, "GET")
    return not_found(method, path)


def aiohttp_path_test(canonical_paths: Iterable[str]) -> Callable[[bytes], bool]:
    """A test of whether a path belongs to the aiohttp side: under the first segment of one of its routes
    (/metrics, /dashboard, /admin), other than the routes the lean server answers itself."""
    prefixes, variable = set(), set()
    for path in canonical_paths:
        raw = path.encode()
        if raw in HOT_PATHS or raw in SIMPLE_GETS or path.startswith(EDGE_ERROR_PREFIX):
            continue
        if raw.startswith(b"/v1/") and b"{" in raw:  # an API path with an id (/v1/responses/{id}): its stem
            variable.add(raw[:raw.index(b"{")])
            continue
        prefixes.add(b"/" + raw.split(b"/")[1])
    frozen, stems = frozenset(prefixes), tuple(variable)

    def belongs(path: bytes) -> bool:
        if path in HOT_PATHS or path in SIMPLE_GETS:
            return False
        first = b"/" + path.split(b"/", 2)[1] if path.startswith(b"/") else b""
        return first in frozen or (bool(stems) and path.startswith(stems))

    return belongs


def answering_endpoint(url: bytes) -> str | None:
    """The API endpoint a refused request was for (its path, query dropped), so its error comes in that
    API's own shape (Anthropic's for /v1/messages); None for any other path: OpenAI's shape."""
    return HOT_PATHS.get(url.partition(b"?")[0])


def hand_over(error: GatewayError, request_id: str | None = None, answer_as: str | None = None) -> bytes:
    """A request for the aiohttp side that answers `error` in turn (see EDGE_ERROR_PREFIX), under the
    refused request's own id when it had a valid one, shaped as the API `answer_as` names."""
    token = secrets.token_hex(8)
    _pending[token] = (error, answer_as)
    while len(_pending) > _MAX_PENDING:  # handed over on connections that closed before aiohttp read them
        del _pending[next(iter(_pending))]
    request_id_line = f"x-request-id: {request_id}\r\n" if valid_request_id(request_id) else ""
    return (f"GET {EDGE_ERROR_PREFIX}{token} HTTP/1.1\r\nHost: edge\r\n{request_id_line}Content-Length: 0\r\n"
            "Connection: close\r\n\r\n").encode()


def take_handed_over(token: str) -> tuple[GatewayError, str | None] | None:
    return _pending.pop(token, None)


_NOT_FORWARDED = {b"content-length", b"transfer-encoding", b"expect", b"connection", b"upgrade",
                  b"http2-settings", b"keep-alive"}
_UPGRADE_HEADERS = (b"upgrade", b"http2-settings")


def reserialised(method: bytes, url: bytes, version: str, keep_alive: bool, raw_headers: list[tuple[bytes, bytes]],
                 body: bytes) -> bytes:
    """A parsed request again as one head with Content-Length and the de-chunked body, for the aiohttp side:
    it only ever reads well-formed HTTP, framed one way."""
    lines = [b"%s %s HTTP/%s\r\n" % (method, url, version.encode())]
    # values as UTF-8 text of their ISO-8859-1 reading: aiohttp decodes UTF-8, and so reads what we read
    lines += [b"%s: %s\r\n" % (n, v if v.isascii() else v.decode("latin-1").encode())
              for n, v in raw_headers if n.lower() not in _NOT_FORWARDED]
    lines.append(b"Content-Length: %d\r\nConnection: %s\r\n\r\n" % (len(body), b"keep-alive" if keep_alive else b"close"))
    return b"".join(lines) + body


def head_without_upgrade(method: bytes, url: bytes, version: str, raw_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A request head with its Upgrade (and the Connection tokens naming it) taken out: the gateway declines
    every upgrade, so the request is parsed again as plain HTTP/1.1 and its body read as its body."""
    kept, connection = [], []
    for name, value in raw_headers:
        lower = name.lower()
        if lower == b"connection":
            connection += [t.strip() for t in value.split(b",") if t.strip().lower() not in _UPGRADE_HEADERS]
        elif lower not in _UPGRADE_HEADERS:
            kept.append(b"%s: %s\r\n" % (name, value))
    if any(connection):
        kept.append(b"Connection: %s\r\n" % b", ".join(t for t in connection if t))
    return b"%s %s HTTP/%s\r\n%s\r\n" % (method, url, version.encode(), b"".join(kept))

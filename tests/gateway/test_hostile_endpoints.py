"""The hostile client's corpus (test_hostile_edge.py) against the other client APIs: POST /v1/messages,
/v1/messages/count_tokens, /v1/responses, and GET/DELETE /v1/responses/{id}, over raw sockets.

Every case asserts the edge contract on each endpoint: an answer in that API's own error shape (Anthropic's
`{"type": "error", "error": {"type", "message"}}` for the Messages endpoints, OpenAI's
`{"error": {"message", "type", "param", "code"}}` for the Responses endpoints), never a 500, exactly one
ledger row per request saying what the client got, nothing smuggled served, and the ledger writer alive
afterwards (a good request still gets its row).
"""

from __future__ import annotations

from contextlib import ExitStack

import orjson
import pytest

from tests.accounting.support import start_gateway
from tests.gateway.raw_http import Conversation, get, post
from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config

pytestmark = pytest.mark.slow

LIMIT = 3000
GOOD = {
    "/v1/messages": {"model": "chat", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages/count_tokens": {"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": "chat", "input": "hi", "max_output_tokens": 16},
}
POSTS = list(GOOD)
SHAPE = {"/v1/messages": "anthropic", "/v1/messages/count_tokens": "anthropic", "/v1/responses": "openai"}
STORED = "/v1/responses/resp_does_not_exist"


@pytest.fixture(scope="module")
def gw(emulator_session, tmp_path_factory):
    config = emulator_config(emulator_session, server={"max_body_bytes": LIMIT})
    with ExitStack() as stack:
        yield start_gateway(stack, tmp_path_factory.mktemp("hostile-endpoints"), config, env=PROVIDER_KEYS)


def tag(path: str) -> str:
    return {"/v1/messages": "msg", "/v1/messages/count_tokens": "count", "/v1/responses": "resp"}[path]


def error_of(reply, shape: str) -> dict:
    """The error object, after checking the envelope is the API's own."""
    assert reply.status != 500, reply.body[:300]
    assert reply.headers.get("content-type", "").startswith("application/json"), (reply.status, reply.body[:300])
    body = reply.json()
    if shape == "anthropic":
        assert body["type"] == "error" and {"type", "message"} <= set(body["error"]), body
        return body["error"]
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def with_header(raw: bytes, header: bytes) -> bytes:
    return raw.replace(b"Host: t\r\n", b"Host: t\r\n" + header + b"\r\n", 1)


def request(method: str, path: str, request_id: str = "", header: bytes = b"") -> bytes:
    rid = f"x-request-id: {request_id}\r\n".encode() if request_id else b""
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n".encode() + rid + (header + b"\r\n" if header else b"") + b"\r\n"


def one_row(gw, request_id: str) -> dict:
    gw.row(request_id)
    rows = [r for r in gw.rows() if r["id"] == request_id]
    assert len(rows) == 1, rows
    return rows[0]


def still_writes(gw, label: str) -> None:
    """The gateway still serves, and the ledger writer still writes, after the case."""
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat("after"), f"after-{label}"))
    assert conv.replies_done(1)[0].status == 200
    conv.close()
    assert gw.row(f"after-{label}")["status"] == "ok"


def send_one(gw, raw: bytes) -> tuple[Conversation, object]:
    conv = Conversation(gw.port)
    conv.send(raw)
    return conv, conv.replies_done(1)[0]


# ---- header bytes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", POSTS)
def test_a_non_utf8_request_id_is_replaced_and_the_request_served(gw, path):
    conv, reply = send_one(gw, with_header(post(path, GOOD[path]), b"x-request-id: id\xff\xfe"))
    assert reply.status == 200, reply.body[:300]
    replaced = reply.headers["x-request-id"]
    assert replaced.isascii() and not replaced.startswith("id")
    conv.close()
    row = one_row(gw, replaced)
    assert (row["status"], row["http_status"]) == ("ok", 200)
    still_writes(gw, f"utf8-{tag(path)}")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_non_utf8_request_id_on_a_stored_response_is_replaced(gw, method):
    conv, reply = send_one(gw, request(method, STORED, header=b"x-request-id: id\xff\xfe"))
    assert reply.status == 404 and error_of(reply, "openai")["type"] == "invalid_request_error"
    replaced = reply.headers["x-request-id"]
    assert replaced.isascii() and not replaced.startswith("id")
    conv.close()
    assert one_row(gw, replaced)["http_status"] == 404
    still_writes(gw, f"utf8-{method}")


@pytest.mark.parametrize("value", [b"x" * 129, b"has space", b"caf\xc3\xa9", b""])
@pytest.mark.parametrize("path", POSTS)
def test_a_request_id_out_of_shape_is_replaced(gw, path, value):
    conv, reply = send_one(gw, with_header(post(path, GOOD[path]), b"x-request-id: " + value))
    assert reply.status == 200 and reply.headers["x-request-id"].encode() != value
    conv.close()
    assert one_row(gw, reply.headers["x-request-id"])["status"] == "ok"


@pytest.mark.parametrize("target", [*POSTS, "GET", "DELETE"])
def test_a_control_byte_in_a_header_is_400_with_one_row(gw, target):
    """The header is refused before the request is read, so its row has the gateway's own id."""
    raw = (request(target, STORED) if target in ("GET", "DELETE") else post(target, GOOD[target]))
    conv, reply = send_one(gw, with_header(raw, b"x-trace: a\x01b"))
    assert reply.status == 400
    assert error_of(reply, SHAPE.get(target, "openai"))["type"] == "invalid_request_error"
    assert conv.server_closed()
    row = one_row(gw, reply.headers["x-request-id"])
    assert (row["status"], row["http_status"]) == ("client_error", 400)
    still_writes(gw, f"control-{target.strip('/').replace('/', '-')}")


# ---- smuggling ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("upgrade", [b"h2c", b"websocket"])
@pytest.mark.parametrize("path", POSTS)
def test_upgrade_never_smuggles_the_body_as_a_request(gw, path, upgrade):
    inner = post(path, GOOD[path], f"inner-{tag(path)}-{upgrade.decode()}")
    outer_id = f"outer-{tag(path)}-{upgrade.decode()}"
    head = (f"POST {path} HTTP/1.1\r\nHost: t\r\nx-request-id: {outer_id}\r\n".encode() +
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: " + upgrade + b"\r\nHTTP2-Settings: AAMAAABk\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(inner))
    conv, reply = send_one(gw, head + inner)
    assert reply.status == 400, "the body is read as the body: it is not JSON"
    error_of(reply, SHAPE[path])
    assert reply.headers["x-request-id"] == outer_id
    conv.send(get("/healthz"))
    assert conv.replies_done(2)[1].status == 200 and len(conv.replies) == 2, "no answer to a smuggled request"
    conv.close()
    still_writes(gw, f"upgrade-{tag(path)}-{upgrade.decode()}")
    assert one_row(gw, outer_id)["http_status"] == 400
    assert not [r for r in gw.rows() if r["id"].startswith("inner-")], "the inner request was never served"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_body_on_a_stored_response_request_is_never_a_second_request(gw, method):
    inner = post("/v1/responses", GOOD["/v1/responses"], f"inner-stored-{method}")
    raw = (f"{method} {STORED} HTTP/1.1\r\nHost: t\r\nx-request-id: stored-upgrade-{method}\r\n"
           f"Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: {len(inner)}\r\n\r\n").encode() + inner
    conv, reply = send_one(gw, raw)
    assert reply.status in (400, 404)
    error_of(reply, "openai")
    conv.send(get("/healthz"))
    assert conv.replies_done(2)[1].status == 200 and len(conv.replies) == 2
    conv.close()
    assert one_row(gw, f"stored-upgrade-{method}")["http_status"] == reply.status
    assert not [r for r in gw.rows() if r["id"] == f"inner-stored-{method}"]


# ---- bodies -------------------------------------------------------------------------------------------

def bodies(path: str) -> dict[str, tuple[bytes, str | None]]:
    """name -> (raw body, the field the error must name, or None when the message names the problem)."""
    good = orjson.dumps(GOOD[path])
    deep = good[:-1] + b', "metadata": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}"
    wrong = {"/v1/messages": ("messages", "hi"), "/v1/messages/count_tokens": ("messages", {"role": "user"}),
             "/v1/responses": ("input", 5)}[path]
    limit_field = {"/v1/messages": "max_tokens", "/v1/messages/count_tokens": "max_tokens",
                   "/v1/responses": "max_output_tokens"}[path]
    return {
        "non-utf8": (good.replace(b'"hi"', b'"h\xff\xfei"'), None),
        "deep": (deep, None),
        "huge-number": (orjson.dumps({**GOOD[path], limit_field: 5_000_000_000_000}), limit_field),
        "too-big-for-64-bits": (good[:-1] + b', "' + limit_field.encode() + b'": ' + b"9" * 40 + b"}", None),
        "float-overflow": (good[:-1] + b', "temperature": 1e999}', None),
        "wrong-type": (orjson.dumps({**GOOD[path], wrong[0]: wrong[1]}), wrong[0]),
        "model-not-a-string": (orjson.dumps({**GOOD[path], "model": ["chat"]}), "model"),
        "truncated": (good[: len(good) // 2], None),
        "not-an-object": (b'["model", "chat"]', None),
        "empty": (b"", None),
    }


CASES = [(path, name) for path in POSTS for name in bodies(path)]


@pytest.mark.parametrize("path, name", CASES)
def test_a_bad_body_is_400_in_the_apis_own_shape_with_one_row(gw, path, name):
    raw, field = bodies(path)[name]
    request_id = f"body-{tag(path)}-{name}"
    conv, reply = send_one(gw, post(path, raw, request_id))
    assert reply.status == 400, (name, reply.status, reply.body[:300])
    error = error_of(reply, SHAPE[path])
    assert error["type"] == "invalid_request_error"
    if field is not None:
        assert field in error["message"], error
        if SHAPE[path] == "openai":
            assert error["param"] == field
    if name == "deep":
        assert "128" in error["message"]
    assert reply.headers["x-request-id"] == request_id
    conv.close()
    row = one_row(gw, request_id)
    assert (row["status"], row["http_status"]) == ("client_error", 400)


@pytest.mark.parametrize("path", POSTS)
def test_duplicate_keys_are_read_one_way_only(gw, path):
    """A key given twice is read as the last one everywhere (routing, the row, the upstream body), so
    the row and the answer cannot disagree about which model was asked for."""
    good = orjson.dumps(GOOD[path])
    raw = b'{"model": "no-such-group", ' + good[1:]
    conv, reply = send_one(gw, post(path, raw, f"dup-{tag(path)}"))
    assert reply.status == 200, reply.body[:300]
    conv.close()
    row = one_row(gw, f"dup-{tag(path)}")
    assert (row["requested_model"], row["status"]) == ("chat", "ok")
    raw = good[:-1] + b', "model": "no-such-group"}'
    conv, reply = send_one(gw, post(path, raw, f"dup-last-{tag(path)}"))
    assert reply.status == 404 and "no-such-group" in error_of(reply, SHAPE[path])["message"]
    conv.close()
    assert one_row(gw, f"dup-last-{tag(path)}")["http_status"] == 404


@pytest.mark.parametrize("path", POSTS)
def test_an_oversized_body_is_413_in_the_apis_own_shape(gw, path):
    big = {**GOOD[path], "metadata": {"pad": "x" * (LIMIT * 2)}}
    conv, reply = send_one(gw, post(path, big, f"big-{tag(path)}"))
    assert reply.status == 413
    error_of(reply, SHAPE[path])
    assert reply.headers["x-request-id"] == f"big-{tag(path)}"
    conv.close()
    assert one_row(gw, f"big-{tag(path)}")["http_status"] == 413
    still_writes(gw, f"big-{tag(path)}")


# ---- stored responses: ids and paths ------------------------------------------------------------------

STORED_PATHS = {
    "unknown": STORED,
    "percent-bytes": "/v1/responses/%ff%fe%00",
    "long": "/v1/responses/" + "r" * 3000,
    "dot-dot": "/v1/responses/..%2f..%2fadmin",
}


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("name", list(STORED_PATHS))
def test_a_stored_response_that_is_not_there_is_404_openai_shaped(gw, method, name):
    request_id = f"stored-{method}-{name}"
    conv, reply = send_one(gw, request(method, STORED_PATHS[name], request_id))
    assert reply.status in (400, 404), (reply.status, reply.body[:300])
    assert error_of(reply, "openai")["type"] == "invalid_request_error"
    conv.close()
    assert one_row(gw, request_id)["http_status"] == reply.status


@pytest.mark.parametrize("method", [b"GET", b"DELETE"])
def test_raw_8bit_bytes_in_a_stored_response_path_are_no_500(gw, method):
    """The request line is refused before its headers are read: the row has the gateway's own id."""
    conv, reply = send_one(gw, method + b" /v1/responses/\xff\xfe HTTP/1.1\r\nHost: t\r\nx-request-id: raw-" + method +
                           b"\r\n\r\n")
    assert reply.status in (400, 404)
    error_of(reply, "openai")
    conv.close()
    assert one_row(gw, reply.headers["x-request-id"])["http_status"] == reply.status
    still_writes(gw, f"raw-path-{method.decode()}")


def test_a_pipeline_mixing_every_endpoint_good_and_bad_is_answered_in_order(gw):
    batch, expected = b"", []
    for i, path in enumerate(POSTS * 4):
        if i % 2:
            batch += post(path, GOOD[path], f"mix-{i}")
            expected.append(200)
        else:
            batch += post(path, b"{not json", f"mix-{i}")
            expected.append(400)
    batch += request("GET", STORED, "mix-get") + request("DELETE", STORED, "mix-delete")
    expected += [404, 404]
    conv = Conversation(gw.port)
    conv.send(batch)
    replies = conv.replies_done(len(expected))
    assert [r.status for r in replies] == expected
    conv.close()
    ids = [f"mix-{i}" for i in range(len(POSTS) * 4)] + ["mix-get", "mix-delete"]
    assert [one_row(gw, request_id)["http_status"] for request_id in ids] == expected
    still_writes(gw, "mix")


@pytest.mark.parametrize("path", POSTS)
def test_on_an_aiohttp_connection_each_endpoint_keeps_its_contract(gw, path):
    """After /metrics the aiohttp application owns the connection; the same cases get the same answers."""
    conv = Conversation(gw.port)
    conv.send(get("/metrics"))
    assert conv.replies_done(1)[0].status == 200
    conv.send(with_header(post(path, GOOD[path]), b"x-request-id: id\xff\xfe"))
    conv.send(post(path, b'{"model": "chat", "messages": [', f"aio-bad-{tag(path)}"))
    conv.send(post(path, {**GOOD[path], "metadata": {"pad": "x" * (LIMIT * 2)}}, f"aio-big-{tag(path)}"))
    replies = conv.replies_done(4)
    assert [r.status for r in replies[1:]] == [200, 400, 413]
    replaced = replies[1].headers["x-request-id"]
    assert replaced.isascii() and not replaced.startswith("id")
    error_of(replies[2], SHAPE[path])
    error_of(replies[3], SHAPE[path])
    conv.close()
    assert one_row(gw, replaced)["status"] == "ok"
    assert one_row(gw, f"aio-bad-{tag(path)}")["http_status"] == 400
    assert one_row(gw, f"aio-big-{tag(path)}")["http_status"] == 413
    still_writes(gw, f"aio-{tag(path)}")

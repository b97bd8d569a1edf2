"""A hostile client's corpus over raw sockets, against `tollway serve` as users start it.

Every case asserts the edge contract (gateway/edge.py): an OpenAI-shaped 4xx, never a 500 and never
silence; the gateway still serves a good request afterwards; and exactly one true ledger row per request,
with nothing smuggled in behind it. Cases run on both server sides: the lean server, and a connection the
aiohttp application owns (one that asked for /metrics first).
"""

from __future__ import annotations

import subprocess
from contextlib import ExitStack

import orjson
import pytest

from tests.accounting.support import ENV as KEY_ENV
from tests.accounting.support import budget_config, start_gateway
from tests.gateway.raw_http import Conversation, get, post
from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import TOLLWAY

pytestmark = pytest.mark.slow

LIMIT = 3000
INNER = post("/v1/chat/completions", chat("smuggled"), "smuggled-inner")


@pytest.fixture(scope="module")
def gw(emulator_session, tmp_path_factory):
    config = emulator_config(emulator_session, server={"max_body_bytes": LIMIT})
    with ExitStack() as stack:
        yield start_gateway(stack, tmp_path_factory.mktemp("hostile"), config, env=PROVIDER_KEYS)


def error_of(reply) -> dict:
    assert reply.headers.get("content-type", "").startswith("application/json"), (reply.status, reply.body)
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def rows_since(gw, before: int, count: int) -> list[dict]:
    rows = gw.rows(wait_for=before + count)
    return rows[before:]


def still_serves(gw, tag: str) -> None:
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat("after"), f"after-{tag}"))
    assert conv.replies_done(1)[0].status == 200
    conv.close()
    assert gw.row(f"after-{tag}")["status"] == "ok"


def test_a_non_utf8_request_id_is_replaced_and_the_ledger_keeps_writing(gw):
    before = len(gw.rows())
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat("bytes")).replace(b"Host: t\r\n", b"Host: t\r\nx-request-id: id\xff\xfe\r\n"))
    reply = conv.replies_done(1)[0]
    assert reply.status == 200
    replaced = reply.headers["x-request-id"]
    assert replaced.isascii() and not replaced.startswith("id")
    conv.close()
    [row] = rows_since(gw, before, 1)
    assert row["id"] == replaced and row["status"] == "ok" and row["http_status"] == 200
    still_serves(gw, "utf8")


@pytest.mark.parametrize("value", [b"x" * 129, b"has space", b"tab\tin", b"caf\xc3\xa9", b""])
def test_a_request_id_out_of_shape_is_replaced(gw, value):
    conv = Conversation(gw.port)
    raw = post("/v1/chat/completions", chat()).replace(b"Host: t\r\n", b"Host: t\r\nx-request-id: " + value + b"\r\n")
    conv.send(raw)
    reply = conv.replies_done(1)[0]
    assert reply.status == 200 and reply.headers["x-request-id"].encode() != value
    conv.close()
    assert gw.row(reply.headers["x-request-id"])["status"] == "ok"


def test_a_control_byte_in_a_header_is_400_malformed_with_a_row(gw):
    before = len(gw.rows())
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat()).replace(b"Host: t\r\n", b"Host: t\r\nx-request-id: a\x01b\r\n"))
    reply = conv.replies_done(1)[0]
    assert reply.status == 400 and error_of(reply)["code"] == "malformed_http"
    assert conv.server_closed()
    [row] = rows_since(gw, before, 1)
    assert (row["endpoint"], row["status"], row["http_status"]) == ("edge", "client_error", 400)
    still_serves(gw, "control-byte")


@pytest.mark.parametrize("upgrade", [b"h2c", b"websocket"])
def test_upgrade_never_smuggles_the_body_as_a_request(gw, upgrade):
    before = len(gw.rows())
    conv = Conversation(gw.port)
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nx-request-id: smuggling-outer\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: " + upgrade + b"\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(INNER))
    conv.send(head + INNER)
    reply = conv.replies_done(1)[0]
    assert reply.status == 400 and error_of(reply)["code"] == "invalid_json", "the body is read as the body"
    assert reply.headers["x-request-id"] == "smuggling-outer"
    conv.send(get("/healthz"))
    assert conv.replies_done(2)[1].status == 200, "the connection is still in step"
    assert len(conv.replies) == 2, "no answer to a smuggled request"
    conv.close()
    still_serves(gw, f"upgrade-{upgrade.decode()}")
    rows = gw.rows()
    assert not [r for r in rows if r["id"] == "smuggled-inner"], "the inner request was never served or billed"
    assert [r["id"] for r in rows[before:before + 1]] == ["smuggling-outer"]


def test_a_valid_request_that_offers_h2c_is_served(gw):
    conv = Conversation(gw.port)
    body = orjson.dumps(chat("offering h2c"))
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nx-request-id: offers-h2c\r\nConnection: Upgrade, "
              b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    reply = conv.replies_done(1)[0]
    assert reply.status == 200 and "upgrade" not in reply.headers
    assert reply.json()["choices"][0]["message"]["content"]
    conv.close()
    assert gw.row("offers-h2c")["status"] == "ok"


def test_connect_is_refused_405(gw):
    conv = Conversation(gw.port)
    conv.send(b"CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n")
    reply = conv.replies_done(1)[0]
    assert reply.status == 405 and error_of(reply)["code"] == "method_not_allowed"
    assert conv.server_closed()
    still_serves(gw, "connect")


SMUGGLING = {
    "content-length and chunked": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + INNER,
    "two content-lengths": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                           b"Content-Length: %d\r\n\r\n{}" % (len(INNER) + 2) + INNER,
    "obfuscated chunked": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n" + INNER,
    "bad chunk size": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\n" + INNER,
    "space before colon": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length : 2\r\n\r\n{}" + INNER,
    "obs-fold": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\n{}" + INNER,
    "NUL in header": b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}" + INNER,
    "bare LF line ends": b"POST /v1/chat/completions HTTP/1.1\nHost: t\nContent-Length: 2\n\n{}" + INNER,
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_framing_attacks_are_400_and_serve_nothing_behind_them(gw, name):
    """Ambiguous framing is refused and the connection closed, so no second request can hide in it (a
    framing the parser reads unambiguously, like bare LF line ends, is fine as long as nothing is smuggled)."""
    before = len(gw.rows())
    conv = Conversation(gw.port)
    conv.send(SMUGGLING[name])
    conv.server_closed(timeout=5)
    statuses = [r.status for r in conv.replies]
    assert 500 not in statuses and statuses, (name, conv.raw[:300])
    assert all(s in (400, 200) for s in statuses), statuses
    if statuses[0] == 400:
        assert error_of(conv.replies[0])["code"] == "malformed_http"
    rows = gw.rows(wait_for=before + 1)
    assert not [r for r in rows if r["id"] == "smuggled-inner"], f"{name}: a smuggled request was served"
    assert len(rows) - before == len(statuses), "one row per answer, no more"
    still_serves(gw, name.replace(" ", "-"))


def test_unknown_paths_and_wrong_methods_are_openai_shaped_with_rows(gw):
    before = len(gw.rows())
    conv = Conversation(gw.port)
    conv.send(get("/v2/nothing"))
    conv.send(get("/v1/chat/completions"))
    conv.send(post("/v1/models", {}))
    conv.send(b"DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    replies = conv.replies_done(4)
    assert [r.status for r in replies] == [404, 405, 405, 405]
    assert error_of(replies[0])["code"] == "unknown_url" and "POST /v1/chat/completions" in error_of(replies[0])["message"]
    assert replies[1].headers["allow"] == "POST" and replies[2].headers["allow"] == "GET"
    assert not conv.closed, "a refusal keeps the connection"
    conv.close()
    rows = rows_since(gw, before, 4)
    assert [(r["endpoint"], r["status"], r["http_status"]) for r in rows] == \
        [("edge", "client_error", 404)] + [("edge", "client_error", 405)] * 3


def test_on_an_aiohttp_connection_refusals_are_answered_in_turn(gw):
    """After /metrics the aiohttp application owns the connection: unknown paths, malformed HTTP and an
    oversized body still get the edge's answers, in order, and /metrics in the same write is answered."""
    before = len(gw.rows())
    conv = Conversation(gw.port)
    conv.send(get("/metrics"))
    assert conv.replies_done(1)[0].status == 200
    conv.send(get("/admin/nothing-here"))
    conv.send(get("/v2/nothing"))
    replies = conv.replies_done(3)
    assert [r.status for r in replies[1:]] == [404, 404]
    assert error_of(replies[1])["code"] == "unknown_url"
    conv.send(get("/metrics") + b"HELLO THERE\r\n\r\n")
    replies = conv.replies_done(5)
    assert replies[3].status == 200 and b"tollway_" in replies[3].body, "the /metrics answer is not lost"
    assert replies[4].status == 400 and error_of(replies[4])["code"] == "malformed_http"
    assert conv.server_closed()
    rows = rows_since(gw, before, 3)
    assert [r["http_status"] for r in rows] == [404, 404, 400]


def test_an_oversized_body_on_an_aiohttp_connection_is_413(gw):
    conv = Conversation(gw.port)
    conv.send(get("/metrics"))
    conv.replies_done(1)
    conv.send(post("/v1/chat/completions", chat("x" * (LIMIT * 2)), "big-on-aiohttp"))
    reply = conv.replies_done(2)[1]
    assert reply.status == 413 and error_of(reply)["code"] == "request_too_large"
    assert reply.headers["x-request-id"] == "big-on-aiohttp"
    conv.close()
    assert gw.row("big-on-aiohttp")["http_status"] == 413


def test_deep_json_and_huge_numbers_are_400_naming_the_limit(gw):
    before = len(gw.rows())
    conv = Conversation(gw.port)
    deep = b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "tools": ' + b"[" * 300 + b"]" * 300 + b"}"
    conv.send(post("/v1/chat/completions", deep, "deep"))
    conv.send(post("/v1/chat/completions", chat(max_tokens=5_000_000_000_000), "huge"))
    conv.send(post("/v1/chat/completions", chat(n=1000), "many"))
    conv.send(post("/v1/chat/completions", chat(temperature=7), "hot"))
    replies = conv.replies_done(4)
    assert [r.status for r in replies] == [400] * 4
    assert error_of(replies[0])["code"] == "json_too_deep" and "128" in error_of(replies[0])["message"]
    assert [error_of(r)["param"] for r in replies[1:]] == ["max_tokens", "n", "temperature"]
    conv.close()
    rows = rows_since(gw, before, 4)
    assert [(r["id"], r["status"], r["http_status"]) for r in rows] == \
        [(i, "client_error", 400) for i in ("deep", "huge", "many", "hot")]


def test_many_pipelined_requests_mixing_good_and_bad_are_answered_in_order(gw):
    before = len(gw.rows())
    conv = Conversation(gw.port)
    batch, expected = b"", []
    for i in range(60):
        if i % 3 == 0:
            batch += post("/v1/chat/completions", chat(f"p{i}"), f"pipe-{i}")
            expected.append(200)
        elif i % 3 == 1:
            batch += post("/v1/chat/completions", b"{not json", f"pipe-{i}")
            expected.append(400)
        else:
            batch += get(f"/nope/{i}")
            expected.append(404)
    conv.send(batch)
    replies = conv.replies_done(60)
    assert [r.status for r in replies] == expected
    conv.close()
    rows = rows_since(gw, before, 60)
    assert len(rows) == 60 and sorted(r["http_status"] for r in rows) == sorted(expected)


def test_a_slow_client_dribbling_bytes_is_served(gw):
    conv = Conversation(gw.port)
    for byte in post("/v1/chat/completions", chat("slowly"), "dribble"):
        conv.send(bytes([byte]))
    assert conv.replies_done(1)[0].status == 200
    conv.close()
    assert gw.row("dribble")["status"] == "ok"


def test_a_header_flood_is_431_and_the_gateway_keeps_serving(gw):
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n" + b"x-a: b\r\n" * 12000)
    reply = conv.replies_done(1)[0]
    assert reply.status == 431 and error_of(reply)["code"] == "headers_too_large"
    still_serves(gw, "flood")


def test_a_bearer_token_with_bad_bytes_is_401(emulator, gateway_factory):
    gw = gateway_factory(budget_config(emulator), env=KEY_ENV)
    created = subprocess.run([*TOLLWAY, "keys", "--ledger", str(gw.ledger), "create", "--name", "b", "--json"],
                             capture_output=True, text=True, timeout=60)
    key_id = orjson.loads(created.stdout)["id"]
    before = len(gw.rows())
    conv = Conversation(gw.port)
    raw = post("/v1/chat/completions", chat()).replace(b"Host: t\r\n", b"Host: t\r\nAuthorization: Bearer tw_" +
                                                        key_id.encode() + b"_\xff\xfe\r\n")
    conv.send(raw)
    reply = conv.replies_done(1)[0]
    assert reply.status == 401 and error_of(reply)["code"] == "invalid_api_key"
    conv.send(get("/metrics").replace(b"Host: t\r\n", b"Host: t\r\nCookie: tollway_admin=\xff\xfe\r\n"))
    assert conv.replies_done(2)[1].status == 200, "a cookie with bad bytes on the aiohttp side is no 500"
    conv.send(get("/dashboard/data.json").replace(b"Host: t\r\n", b"Host: t\r\nCookie: tollway_admin=\xff\r\n"))
    assert conv.replies_done(3)[2].status in (401, 403)
    conv.close()
    [row] = rows_since(gw, before, 1)
    assert (row["status"], row["http_status"]) == ("client_error", 401)


@pytest.mark.parametrize("path, shape", [("/v1/messages", "anthropic"), ("/v1/responses", "openai")])
def test_deep_bodies_on_the_translated_endpoints_are_400_in_their_own_shape(gw, path, shape):
    """A body that parses but nests past the limit is refused before it is translated (re-serialising it
    for the upstream would fail past orjson's 255 levels, which once meant a 500)."""
    before = len(gw.rows())
    conv = Conversation(gw.port)
    deep = (b'{"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "input": "x", '
            b'"metadata": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}")
    conv.send(post(path, deep, f"deep-{shape}"))
    reply = conv.replies_done(1)[0]
    assert reply.status == 400
    body = reply.json()
    error = body["error"]
    if shape == "anthropic":
        assert body["type"] == "error" and error["type"] == "invalid_request_error"
    else:
        assert error["code"] == "json_too_deep"
    assert "128" in error["message"]
    conv.close()
    [row] = rows_since(gw, before, 1)
    assert (row["id"], row["status"], row["http_status"]) == (f"deep-{shape}", "client_error", 400)

"""Property-based tests of the edge: the request parser over random JSON, and the hot-path server over
random bytes, headers and smuggling shapes (in process, with a transport that records what is written).

What must hold for any input: client input never yields a 5xx or an exception out of the server; what
the server writes is a sequence of well-formed HTTP responses; a body is never served as a request of
its own; and whatever the parser accepts can be forwarded upstream.
"""

from __future__ import annotations

import asyncio
import json

import httptools
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tollway.gateway.http_server as http_server
from tests.gateway.support import FakeTransport, fake_gateway
from tollway.core.errors import GatewayError
from tollway.core.request import MAX_JSON_DEPTH, parse_request
from tollway.gateway.http_server import HotPathServer

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=30)
FIELDS = st.sampled_from(["model", "messages", "max_tokens", "n", "temperature", "top_p", "stream",
                          "stream_options", "logprobs", "top_logprobs", "seed", "prompt", "input"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["chat", "completions", "embeddings"]),
       st.dictionaries(FIELDS, JSON, max_size=6), st.booleans())
def test_the_parser_accepts_only_what_it_can_forward_and_refuses_with_400(endpoint, body, with_model):
    if with_model:
        body["model"] = "m"
    try:
        request = parse_request(endpoint, json.dumps(body).encode())
    except GatewayError as exc:
        assert exc.status == 400 and exc.message
        return
    assert orjson.dumps({**request.body, "model": "upstream"})


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=1000))
def test_nesting_is_refused_past_one_limit_and_forwardable_below_it(depth):
    raw = b'{"model": "m", "prompt": "p", "x": ' + b"[" * depth + b"]" * depth + b"}"
    try:
        request = parse_request("completions", raw)
    except GatewayError as exc:
        assert depth + 1 > MAX_JSON_DEPTH and exc.code == "json_too_deep"
        return
    assert depth + 1 <= MAX_JSON_DEPTH
    orjson.dumps(request.body)  # the upstream body: no depth the serialiser refuses


@given(st.binary(max_size=400))
def test_random_bytes_as_a_body_are_400_never_a_crash(raw):
    try:
        parse_request("chat", raw)
    except GatewayError as exc:
        assert exc.status == 400


# --- the server, in process ---


Settings = fake_gateway(4000)


class Recorder:
    """Stands in for RequestLife: records what was served and answers 200, or the refusal."""

    served: list[tuple[str, bytes, dict]] = []

    def __init__(self, gw, x, endpoint, answer_as=None) -> None:
        self.x, self.endpoint = x, endpoint

    async def handle(self) -> None:
        try:
            body = await self.x.read_body()
        except GatewayError as exc:  # as RequestLife answers it
            self.x.respond(*exc.rendered({}))
            return
        Recorder.served.append((self.endpoint, body, dict(self.x.headers)))
        self.x.respond(200, {"Content-Type": "application/json"}, b"{}")

    async def refuse(self, error: GatewayError) -> None:
        self.x.respond(*error.rendered({}))


class Responses:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.parser = httptools.HttpResponseParser(self)

    def on_message_complete(self) -> None:
        self.statuses.append(self.parser.get_status_code())


def serve(chunks: list[bytes]) -> tuple[list[int], FakeTransport]:
    """Feed `chunks` to one connection; the statuses written back, in order."""
    async def scenario() -> FakeTransport:
        server = HotPathServer(Settings, None, ["/metrics", "/admin/keys"])  # type: ignore[arg-type]
        conn, transport = server(), FakeTransport()
        conn.connection_made(transport)
        for chunk in chunks:
            if transport.closed:
                break
            conn.data_received(chunk)
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        if server._sweeper is not None:
            server._sweeper.cancel()
        return transport

    original = http_server.RequestLife
    http_server.RequestLife = Recorder  # type: ignore[misc, assignment]
    try:
        transport = asyncio.run(scenario())
    finally:
        http_server.RequestLife = original  # type: ignore[misc]
    responses = Responses()
    if transport.written:
        responses.parser.feed_data(transport.written)  # raises if what was written is not HTTP
    return responses.statuses, transport


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)]) if data[a:b]]


def request(path: bytes = b"/v1/chat/completions", headers: bytes = b"", body: bytes = b"{}") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %d\r\n\r\n%s" % (path, headers, len(body), body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=6))
def test_random_bytes_never_crash_the_server_or_draw_a_5xx(data, cuts):
    Recorder.served = []
    statuses, _ = serve(split(data, cuts))
    assert all(400 <= s < 500 or s == 200 for s in statuses), statuses


TOKENS = st.sampled_from([b"h2c", b"websocket", b"HTTP/2.0", b"foo", b"h2c, websocket"])
CONNECTION = st.sampled_from([b"Upgrade", b"upgrade, HTTP2-Settings", b"keep-alive, Upgrade", b"close, upgrade"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOKENS, CONNECTION, st.booleans(), st.lists(st.integers(min_value=0), max_size=5))
def test_an_upgrade_never_serves_its_body_as_a_request(upgrade, connection, chunked, cuts):
    Recorder.served = []
    inner = request(body=b'{"inner": 1}')
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nConnection: %s\r\nUpgrade: %s\r\n" % (connection, upgrade)
    if chunked:
        outer = head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    else:
        outer = head + b"Content-Length: %d\r\n\r\n%s" % (len(inner), inner)
    statuses, _ = serve(split(outer, cuts))
    assert statuses == [200]
    assert [(e, b) for e, b, _ in Recorder.served] == [("chat", inner)], "one request, whose body is the inner one"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=40).filter(lambda v: b"\r" not in v and b"\n" not in v))
def test_any_header_value_bytes_are_read_as_latin1_or_refused_400(value):
    Recorder.served = []
    statuses, _ = serve([request(headers=b"x-any: " + value + b"\r\n")])
    if statuses == [200]:
        [(_, _, headers)] = Recorder.served
        assert headers["x-any"].encode("latin-1") == value.strip(b" \t")
    else:
        assert statuses == [400], statuses


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["good", "garbage", "unknown", "too-big"]), min_size=1, max_size=8))
def test_pipelines_mixing_good_and_bad_answer_in_order_until_a_fatal_one(kinds):
    Recorder.served = []
    wire, expected = b"", []
    for kind in kinds:
        if kind == "good":
            wire += request()
            expected.append(200)
        elif kind == "unknown":
            wire += request(path=b"/v9/none")
            expected.append(404)
        elif kind == "too-big":
            wire += request(body=b"x" * 5000)
            expected.append(413)
            break
        else:
            wire += b"\x00GARBAGE\r\n\r\n"
            expected.append(400)
            break
    statuses, transport = serve([wire])
    assert statuses == expected
    if expected[-1] in (400, 413):
        assert transport.closed

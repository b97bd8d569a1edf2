"""Calling one deployment: a non-streamed call, or opening a stream up to its first event.

Both turn every way a call can fail (refused connection, timeout, an error status in the provider's own
dialect) into an UpstreamFailure carrying a classified Failure, so the failover walker decides the next
step from one type. A stream counts as opened only once its first data event has arrived: until then the
client has seen nothing and the walker may still move on invisibly.

A provider with keys gets the next key in turn for each attempt (routing/key_ring.py), and is told what
the attempt said about that key: an answer, a refusal of the key itself (revoked, out of funds), or
nothing (any other failure, a cancel). The key travels on the Reply, OpenStream or UpstreamFailure, so
the walker can name it in the ledger and try another key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tollway.providers.dialect import UntranslatableRequest, WireRefusal
from tollway.providers.failure import Failure, FailureKind
from tollway.providers.openai_compatible import is_role_preamble
from tollway.upstream.http_client import HttpClient, Response, UpstreamConnectionError, UpstreamProtocolError
from tollway.upstream.translated import TranslatedResponse, TranslatedStreamFailure

if TYPE_CHECKING:  # routing's deployment and keys; only their attributes are read here
    from tollway.routing.key_ring import KeyRing, ProviderKey
    from tollway.routing.table import RoutedDeployment


class UpstreamFailure(Exception):
    def __init__(self, failure: Failure, key: ProviderKey | None = None, key_refused: bool = False) -> None:
        super().__init__(failure.describe())
        self.failure = failure
        self.key = key                  # the provider key the attempt was sent with, if any
        self.key_refused = key_refused  # the provider refused that key itself (it is now held off)


@dataclass(slots=True)
class Reply:
    """A complete non-streamed answer."""

    body: bytes
    content_type: str
    key: ProviderKey | None = None


@dataclass(slots=True)
class OpenStream:
    """A stream whose first data event has arrived; `events` holds the complete events read so far."""

    response: Response | TranslatedResponse  # a translating dialect's stream reads as canonical events
    events: list[bytes]
    rest: bytes
    separator: bytes
    first_event_at: float
    early_comments: int = 0
    extra: dict = field(default_factory=dict)
    key: ProviderKey | None = None


async def call(client: HttpClient, dep: RoutedDeployment, endpoint: str, payload: bytes, deadline: float,
               client_headers: Mapping[str, str] | None = None, native: bool = False) -> Reply:
    """POST a non-streamed request and read the whole answer within response_s (and the request's deadline).
    A translating dialect's request and answer go through its transforms (pass-through ones never do);
    `native`: the payload is already in the upstream's own dialect (a client's same-dialect fast path),
    so its answer comes back untouched too. The provider's next key in turn is used, and the ring is told
    what came of it (in this frame: one coroutine per attempt)."""
    keys = dep.keys
    key = _key(keys)
    transforms = dep.dialect.transforms
    translate = not native and not transforms.passthrough
    try:
        if translate:
            payload = _translated_request(dep, endpoint, payload)
        limit = _limit(dep.response_s, deadline)
        try:
            resp = await client.post(_target(client, dep, endpoint, client_headers, key), payload, dep.connect_s,
                                     limit)
            body = await resp.read()  # closes the connection if it fails or times out
        except UpstreamConnectionError as exc:
            raise UpstreamFailure(_connection_failure(exc)) from None
        except TimeoutError:
            raise UpstreamFailure(_timeout(dep.response_s, deadline, limit, "no complete answer within")) from None
        if resp.status != 200:
            raise UpstreamFailure(dep.dialect.classify(resp.status, body, resp.header("retry-after")))
        reply = _translated_reply(transforms, endpoint, body) if translate else \
            Reply(body, resp.header("content-type") or "application/json")
    except BaseException as exc:
        if key is not None:
            _key_outcome(keys, key, exc)
        raise
    if key is not None:
        keys.answered(key)  # type: ignore[union-attr]  # key is not None: keys is not None
        reply.key = key
    return reply


def _key(keys: KeyRing | None) -> ProviderKey | None:
    """The provider's next usable key (None for a provider without keys); raises when every key is held off."""
    if keys is None:
        return None
    key = keys.pick()
    if key is None:
        raise UpstreamFailure(keys.exhausted())
    return key


def _key_outcome(keys: KeyRing | None, key: ProviderKey, exc: BaseException) -> None:
    """Tell the ring about an attempt on `key` that did not answer: a failure may refuse the key (noted on
    the failure, for the walk), anything else (a cancel) frees a probe it held."""
    assert keys is not None
    if isinstance(exc, UpstreamFailure):
        exc.key, exc.key_refused = key, keys.failed(key, exc.failure)
    else:
        keys.released(key)


def _translated_reply(transforms: Any, endpoint: str, body: bytes) -> Reply:
    try:
        return Reply(transforms.response(endpoint, body), "application/json")
    except WireRefusal as refusal:
        raise UpstreamFailure(Failure(refusal.kind, refusal.message, refusal.status)) from None
    except (ValueError, AttributeError, TypeError) as exc:
        raise UpstreamFailure(Failure(FailureKind.SERVER, f"upstream answer tollway cannot read: {exc}")) from None


def _target(client: HttpClient, dep: RoutedDeployment, endpoint: str, client_headers: Mapping[str, str] | None,
            key: ProviderKey | None):
    """The deployment's prepared target for `key`, plus the client headers its dialect forwards (anthropic-beta)."""
    target = dep.target(endpoint, client, key)
    forwarded = dep.dialect.forwarded_headers
    if not forwarded or not client_headers:
        return target
    lines = b"".join(f"{name}: {value}\r\n".encode("latin-1", "replace")
                     for name, value in client_headers.items()
                     if name.lower() in forwarded and "\r" not in value and "\n" not in value)
    if not lines:
        return target
    pool, head = target
    tail = b"Content-Length: "
    return pool, head[:-len(tail)] + lines + tail


def _translated_request(dep: RoutedDeployment, endpoint: str, payload: bytes) -> bytes:
    """The dialect's request for the canonical one; a request it cannot carry is the client's 400 (a
    shape the transform did not expect, too: client input never becomes a 500)."""
    try:
        return dep.dialect.transforms.request(endpoint, payload, dep.max_output)
    except UntranslatableRequest as exc:
        raise UpstreamFailure(Failure(FailureKind.CLIENT_ERROR, f"{exc} (deployment {dep.name!r})", 400)) from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        message = (f"the request cannot be sent to a {dep.dialect.name} upstream: a field has a shape its API "
                   f"cannot take ({type(exc).__name__}: {exc}) (deployment {dep.name!r})")
        raise UpstreamFailure(Failure(FailureKind.CLIENT_ERROR, message, 400)) from None


async def open_stream(client: HttpClient, dep: RoutedDeployment, endpoint: str, payload: bytes,
                      deadline: float, client_headers: Mapping[str, str] | None = None,
                      native_preamble: Callable[[bytes], bool] | None = None) -> OpenStream:
    """Send a streamed request and wait (up to first_byte_s and the deadline) for its first substantive event.
    `native_preamble`: the payload is already in the upstream's own dialect (a client's same-dialect fast
    path) and this rule tells its preamble events; it may raise TranslatedStreamFailure for an error event
    that comes before the first token, so the walk moves on. Keys as in `call`."""
    keys = dep.keys
    key = _key(keys)
    transforms = dep.dialect.transforms
    is_preamble = dep.dialect.is_preamble if native_preamble is None else native_preamble
    translate = native_preamble is None and not transforms.passthrough
    resp: Response | TranslatedResponse | None = None
    try:
        if translate:
            payload = _translated_request(dep, endpoint, payload)
            is_preamble = is_role_preamble  # the translated stream is canonical
        limit = _limit(dep.first_byte_s, deadline)
        try:
            path_key = endpoint if dep.dialect.route is None else endpoint + ":stream"
            resp = await client.post(_target(client, dep, path_key, client_headers, key), payload, dep.connect_s,
                                     limit)
            if resp.status != 200:
                body = await resp.read()
                raise UpstreamFailure(dep.dialect.classify(resp.status, body, resp.header("retry-after")))
            if translate:
                resp = TranslatedResponse(resp, transforms.stream())
            opened = await _read_first_event(resp, is_preamble)
        except TranslatedStreamFailure as exc:
            raise UpstreamFailure(exc.failure) from None
        except UpstreamConnectionError as exc:
            raise UpstreamFailure(_connection_failure(exc)) from None
        except TimeoutError:
            raise UpstreamFailure(_timeout(dep.first_byte_s, deadline, limit, "no first token within")) from None
    except BaseException as exc:
        _close(resp)
        if key is not None:
            _key_outcome(keys, key, exc)
        raise
    resp.set_deadline(None)  # from here on the relay's silence timer watches the stream
    if isinstance(resp, TranslatedResponse):
        resp.opened = True
    if key is not None:
        keys.answered(key)  # type: ignore[union-attr]  # key is not None: keys is not None
        opened.key = key
    return opened


async def _read_first_event(resp: Response | TranslatedResponse, is_preamble: Callable[[bytes], bool]) -> OpenStream:
    """Read until the first substantive event; keep-alive comments and the dialect's preamble events (a
    role-only chunk, for OpenAI-compatible ones) do not count, so a stream that dies right after its
    preamble still fails over without the client noticing. Only the events before the first substantive one are looked at: the rest of what arrived (often the
    whole answer, from a fast upstream) is handed over unsplit."""
    buffer = b""
    separator = b""
    held: list[bytes] = []
    comments = 0
    while (chunk := await resp.next_chunk()) is not None:
        buffer = buffer + chunk if buffer else chunk
        if not separator:  # the stream's line ending, from its first line (not a scan of the whole read)
            newline = buffer.find(b"\n")
            if newline < 0:
                continue
            separator = b"\r\n\r\n" if newline and buffer[newline - 1] == 13 else b"\n\n"
        start, width = 0, len(separator)
        while (end := buffer.find(separator, start)) >= 0:
            event, begun, start = buffer[start:end + width], start, end + width
            if end == begun:
                continue  # an empty event (extra blank lines)
            if event.startswith(b":"):
                comments += 1
            elif is_preamble(event):
                held.append(event)
            else:
                return OpenStream(resp, [*held, event], buffer[start:], separator,
                                  asyncio.get_running_loop().time(), comments)
        buffer = buffer[start:]
    resp.close()
    raise UpstreamFailure(Failure(FailureKind.STREAM_CUT, "stream ended before its first token"))


def _limit(timeout_s: float, deadline: float) -> float:
    """The earlier of the attempt's own timeout and the request's deadline (loop time)."""
    own = asyncio.get_running_loop().time() + timeout_s
    return deadline if deadline < own else own


def _timeout(timeout_s: float, deadline: float, limit: float, what: str) -> Failure:
    """How to say an attempt ran out of time: its own timeout, or the request's deadline."""
    if limit == deadline:
        return Failure(FailureKind.TIMEOUT, "request deadline reached")
    return Failure(FailureKind.TIMEOUT, f"{what} {timeout_s:g}s")


def _connection_failure(exc: UpstreamConnectionError) -> Failure:
    if isinstance(exc, UpstreamProtocolError):
        return Failure(FailureKind.SERVER, str(exc))
    if "timeout" in str(exc):
        return Failure(FailureKind.TIMEOUT, str(exc))
    return Failure(FailureKind.CONNECT, str(exc))


def _close(resp: Response | TranslatedResponse | None) -> None:
    if resp is not None:
        resp.close()

"""A lean asyncio Redis client for the counters' script calls only (EVALSHA admit/settle/budget_state).

Why not redis-py here: every request makes two script calls, and redis-py's pool, command packing and
per-call locking cost ~0.4 ms of CPU each. This client keeps one persistent connection per process,
pipelines calls on it (replies are matched to callers in order, FIFO, as Redis answers in order), packs a
command with one bytes join and parses replies with hiredis. Everything else (pub/sub, key store, ping,
reconciliation) stays on redis-py.

Timeouts: each call has its own bound. A call that runs past it raises TimeoutError and its connection is
dropped (every other call pending on it fails with ConnectionError), so a reply that arrives late can never
be read by a later call; the next call opens a fresh connection. A caller cancelled from outside keeps its
place in the queue: its reply, when it comes, is discarded, so the order stays right.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is and how to log in; `where` names it without the password, for messages."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log line or an error
    tls: ssl.SSLContext | None = None
    unix_path: str | None = None

    @property
    def where(self) -> str:
        return self.unix_path or f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """redis://[user:pass@]host:port/db, rediss:// (TLS) or unix:///path?db=N."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis URL scheme must be redis://, rediss:// or unix:// (got {parts.scheme!r}://)")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if parts.scheme == "unix":
            query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
            return cls(db=int(query.get("db", 0)), username=username, password=password, unix_path=parts.path)
        path = parts.path.strip("/")
        try:
            db = int(path) if path else 0
        except ValueError:
            raise ValueError(f"Redis URL database must be a number (got {path!r})") from None
        tls = ssl.create_default_context() if parts.scheme == "rediss" else None
        return cls(parts.hostname or "127.0.0.1", parts.port or 6379, db, username, password, tls)

    @classmethod
    def from_redis_py(cls, client: Any) -> RedisAddress:
        """The same server and login as a redis-py client (so one `--redis-url` configures both)."""
        pool = client.connection_pool
        kw = pool.connection_kwargs
        tls = None
        if "ssl" in pool.connection_class.__name__.lower():
            tls = ssl.create_default_context(cafile=kw.get("ssl_ca_certs"))
            if kw.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        return cls(kw.get("host", "127.0.0.1"), int(kw.get("port", 6379)), int(kw.get("db", 0) or 0),
                   kw.get("username"), kw.get("password"), tls, kw.get("path"))


def pack(*args: str | int | bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if type(arg) is bytes else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# Most of a script call's ~65 arguments repeat request after request (key names, limits, expiries): their
# packed form is kept, which makes packing a command ~5x cheaper. Bounded: emptied when full (one-off
# values such as tickets pass through it; what repeats is back after a few calls).
_PACKED: dict[str | int, bytes] = {}
PACKED_MAX = 8192


def _bulk(arg: str | int) -> bytes:
    data = str(arg).encode()
    packed = b"$%d\r\n%s\r\n" % (len(data), data)
    if len(_PACKED) >= PACKED_MAX:
        _PACKED.clear()
    _PACKED[arg] = packed
    return packed


class Script:
    """A Lua script known by its SHA1, with the EVALSHA head of its commands packed once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.head = b"$7\r\nEVALSHA\r\n$40\r\n" + self.sha.encode() + b"\r\n"

    def command(self, keys: list[str], args: list[str | int]) -> bytes:
        """EVALSHA sha numkeys *keys *args; arguments are str or int (their text is what Redis gets)."""
        get = _PACKED.get
        parts = [b"*%d\r\n" % (3 + len(keys) + len(args)), self.head, get(len(keys)) or _bulk(len(keys))]
        parts += [get(arg) or _bulk(arg) for arg in keys]
        parts += [get(arg) or _bulk(arg) for arg in args]
        return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One socket to Redis; replies resolve the pending futures in the order the commands were written."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self.pending: deque[tuple[asyncio.Future, asyncio.TimerHandle | None]] = deque()
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def send(self, command: bytes, timeout_s: float | None) -> asyncio.Future:
        future = self.loop.create_future()
        timer = self.loop.call_later(timeout_s, self._time_out, future) if timeout_s else None
        self.pending.append((future, timer))
        self.transport.write(command)  # type: ignore[union-attr]
        return future

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        try:
            while (reply := self.reader.gets()) is not False:
                future, timer = pending.popleft()
                if timer is not None:
                    timer.cancel()
                if future.done():  # its caller gave up (cancelled): the reply is discarded, the order kept
                    continue
                if type(reply) is ResponseError:
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except hiredis.ProtocolError as exc:
            self._drop(RedisConnectionError(f"Redis at {self.where} sent a reply that is not RESP: {exc}"))

    def _time_out(self, future: asyncio.Future) -> None:
        """Past a call's bound: it fails, and the connection goes, so its late reply is never read."""
        if not future.done():
            future.set_exception(TimeoutError(f"Redis at {self.where} did not answer in time"))
        self._drop(RedisConnectionError(f"Dropped the connection to Redis at {self.where} after a call timed out"))

    def _drop(self, error: Exception) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()
        self._fail_pending(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail_pending(RedisConnectionError(f"Lost the connection to Redis at {self.where}"))

    def _fail_pending(self, error: Exception) -> None:
        while self.pending:
            future, timer = self.pending.popleft()
            if timer is not None:
                timer.cancel()
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class RespClient:
    """Script calls over one pipelined connection, opened on first use and reopened after it breaks."""

    def __init__(self, address: RedisAddress, connect_timeout_s: float = 1.0) -> None:
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future | None = None

    async def evalsha(self, script: Script, keys: list[str], args: list[str | int],
                      timeout_s: float | None = None) -> Any:
        """Run a script by SHA; after NOSCRIPT (a restarted or flushed Redis) load it and run it again."""
        command = script.command(keys, args)
        try:
            return await self.call(command, timeout_s)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call(pack("SCRIPT", "LOAD", script.source), timeout_s)
        return await self.call(command, timeout_s)

    async def call(self, command: bytes, timeout_s: float | None = None) -> Any:
        """Send one packed command and await its reply (TimeoutError past `timeout_s`)."""
        connection = self._connection
        if connection is None or not connection.open or connection.loop is not asyncio.get_running_loop():
            connection = await self._connect()  # (a connection is bound to the loop that opened it)
        return await connection.send(command, timeout_s)

    async def _connect(self) -> _Connection:
        if self._connecting is not None and self._connecting.get_loop() is not asyncio.get_running_loop():
            self._connecting = None
        if self._connecting is None:  # one connect at a time; concurrent callers share it
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open(self) -> _Connection:
        address = self.address
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                if address.unix_path:
                    _, connection = await loop.create_unix_connection(lambda: _Connection(address.where),
                                                                      address.unix_path)
                else:
                    _, connection = await loop.create_connection(lambda: _Connection(address.where),
                                                                 address.host, address.port, ssl=address.tls)
                await self._log_in(connection)
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if not isinstance(exc, (OSError, asyncio.TimeoutError)):
                raise
            raise RedisConnectionError(f"Could not connect to Redis at {address.where}: "
                                       f"{type(exc).__name__}") from None
        return connection

    async def _log_in(self, connection: _Connection) -> None:
        address = self.address
        if address.password is not None:
            login = ("AUTH", address.username, address.password) if address.username else ("AUTH", address.password)
            try:
                await connection.send(pack(*login), None)
            except ResponseError as exc:
                reason = str(exc).split(" ", 1)[0]  # WRONGPASS / NOAUTH ...: never the secret itself
                raise AuthenticationError(f"Redis at {address.where} refused the URL's credentials ({reason})") from None
        if address.db:
            await connection.send(pack("SELECT", address.db), None)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

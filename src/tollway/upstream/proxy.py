"""Upstream calls through an egress HTTP proxy: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY.

Many companies let servers reach the internet only through a proxy. The variables are the ones curl,
Go, requests and aiohttp read, with the same meanings, so one environment serves every tool in a pod:

- `https_proxy` / `HTTPS_PROXY` for https upstreams, `http_proxy` / `HTTP_PROXY` for http ones, then
  `all_proxy` / `ALL_PROXY` for either (lower case first, as curl and requests look);
- `no_proxy` / `NO_PROXY`: `*`, host names and domains (`example.com` and `.example.com` both match the
  domain and every name under it), IP addresses and CIDR ranges, each optionally with `:port`.
  Loopback (`localhost`, 127.0.0.0/8, ::1) is always reached directly, as Go's HTTP client does: a
  gateway's sidecars and local backends are never behind the egress proxy.

An https upstream is reached with `CONNECT host:443` and TLS inside the tunnel, so the proxy sees only
the host name and the upstream's certificate is checked as without a proxy. An http upstream gets the
absolute-form request line (`POST http://host/path`). Credentials in the proxy URL
(`http://user:pass@proxy:3128`) are sent as `Proxy-Authorization: Basic` to the proxy only (in the
CONNECT, never inside the tunnel) and are never shown: messages name the proxy without them.

The choice is made once per upstream host when its connection pool is made, so the request path pays
nothing for it.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from tollway.config import ConfigError

MAX_CONNECT_REPLY_BYTES = 16 * 1024
PROXY_VARIABLES = tuple(name for lower in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
                        for name in (lower, lower.upper()))

P = TypeVar("P", bound=asyncio.Protocol)


class ProxySettingError(ConfigError):
    """A proxy variable tollway cannot use; the message names the variable, never its credentials."""


class ProxyTunnelError(ConnectionError):
    """The proxy could not be reached or refused the tunnel; the upstream may be retried elsewhere."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, or None without credentials

    @property
    def address(self) -> str:
        """host:port, for messages: the URL's credentials are never part of it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _Bypass:
    everything: bool
    names: tuple[tuple[str, int | None], ...]  # domain (no leading dot), port or None
    networks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None], ...]

    def matches(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        ip = _ip(host)
        if ip is not None:
            return any(ip in net and want in (None, port) for net, want in self.networks)
        return any((host == name or host.endswith("." + name)) and want in (None, port)
                   for name, want in self.names)


class ProxyRules:
    """Which proxy, if any, an upstream URL goes through."""

    def __init__(self, http: Proxy | None, https: Proxy | None, bypass: _Bypass) -> None:
        self.http, self.https, self._bypass = http, https, bypass

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "ProxyRules":
        env = os.environ if environ is None else environ
        every = _proxy_variable(env, "all_proxy")
        return cls(http=_proxy_variable(env, "http_proxy") or every,
                   https=_proxy_variable(env, "https_proxy") or every,
                   bypass=_parse_no_proxy(_variable(env, "no_proxy")[1] or ""))

    def for_url(self, tls: bool, host: str, port: int) -> Proxy | None:
        """The proxy for an upstream at host:port (None: connect directly)."""
        proxy = self.https if tls else self.http
        if proxy is None:
            return None
        host = host.lower().strip("[]").rstrip(".")
        if _is_loopback(host) or self._bypass.matches(host, port):
            return None
        return proxy

    def describe(self) -> str | None:
        """One line for the start-up log (no credentials), or None when no proxy is set."""
        parts = [f"{scheme} via {proxy.address}" for scheme, proxy in (("https", self.https), ("http", self.http))
                 if proxy is not None]
        return "; ".join(parts) if parts else None


def _variable(env: Mapping[str, str], lower: str) -> tuple[str, str | None]:
    for name in (lower, lower.upper()):
        value = env.get(name, "").strip()
        if value:
            return name, value
    return lower.upper(), None


def _proxy_variable(env: Mapping[str, str], lower: str) -> Proxy | None:
    name, value = _variable(env, lower)
    return None if value is None else parse_proxy_url(value, name)


def parse_proxy_url(value: str, variable: str) -> Proxy:
    """`http://[user:pass@]host[:port]` (no scheme means http://) as a Proxy."""
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme != "http":
        raise ProxySettingError(f"{variable}: proxy scheme {parts.scheme}:// is not supported (use an http:// "
                                "proxy; https upstreams are still encrypted end to end through CONNECT)")
    try:
        port = parts.port or 80
    except ValueError:
        raise ProxySettingError(f"{variable}: the proxy's port is not a number between 0 and 65535") from None
    if not parts.hostname:
        raise ProxySettingError(f"{variable}: no proxy host (expected http://host:port)")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


def _parse_no_proxy(value: str) -> _Bypass:
    names: list[tuple[str, int | None]] = []
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
    for entry in (e.strip().lower() for e in value.split(",")):
        if not entry:
            continue
        if entry == "*":
            return _Bypass(True, (), ())
        host, port = _split_port(entry)
        try:
            networks.append((ipaddress.ip_network(host.strip("[]"), strict=False), port))
        except ValueError:
            names.append((host.lstrip("*.").rstrip("."), port))  # "*.x", ".x" and "x" all mean the domain x
    return _Bypass(False, tuple(names), tuple(networks))


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, or a bare host/IP/CIDR (an IPv6 address's colons are not a port)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


# --- connecting -----------------------------------------------------------------------------------------

def absolute_form_head(proxy: Proxy, host_header: str, path: str) -> tuple[str, list[str]]:
    """The request line and extra header lines for a plain-http request sent to the proxy."""
    extra = [f"Proxy-Authorization: {proxy.authorization}"] if proxy.authorization else []
    return f"POST http://{host_header}{path} HTTP/1.1", extra


async def connect_through(proxy: Proxy, host: str, port: int, tls: ssl.SSLContext | None,
                          protocol_factory: Callable[[], P]) -> P:
    """A connection to host:port through the proxy: to the proxy itself for http, or a CONNECT tunnel
    with TLS to the upstream inside it for https. Raises ProxyTunnelError (or ssl.SSLError)."""
    loop = asyncio.get_running_loop()
    if tls is None:
        _, protocol = await _connect_to_proxy(loop, proxy, protocol_factory)
        return protocol
    transport, reply = await _connect_to_proxy(loop, proxy, lambda: _ConnectReply(proxy, host, port))
    try:
        transport.write(_connect_request(proxy, host, port))
        await reply.done
        protocol = protocol_factory()
        tls_transport = await loop.start_tls(transport, protocol, tls, server_hostname=host)
    except BaseException:
        transport.close()
        raise
    assert tls_transport is not None, "start_tls gives a transport or raises"
    protocol.connection_made(tls_transport)
    return protocol


async def _connect_to_proxy(loop: asyncio.AbstractEventLoop, proxy: Proxy, factory: Callable):
    try:
        return await loop.create_connection(factory, proxy.host, proxy.port)
    except OSError as exc:
        raise ProxyTunnelError(f"cannot connect to proxy {proxy.address}: {exc.strerror or exc}") from None


def _connect_request(proxy: Proxy, host: str, port: int) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _ConnectReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: 2xx opens the tunnel, anything else is the proxy's refusal."""

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._what = f"proxy {proxy.address}"
        self._target = f"{host}:{port}"
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self._buffer += data
        head, sep, rest = self._buffer.partition(b"\r\n\r\n")
        if not sep:
            if len(self._buffer) > MAX_CONNECT_REPLY_BYTES:
                self._fail(f"{self._what} sent an over-long answer to CONNECT")
            return
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            self._fail(f"{self._what} answered CONNECT with something not HTTP: {status_line[:80]!r}")
        elif not 200 <= int(fields[1]) < 300:
            self._fail(f"{self._what} refused CONNECT {self._target}: {status_line[:120]}")
        elif rest:
            self._fail(f"{self._what} sent data before the tunnel was open")
        else:
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(f"{self._what} closed the connection during CONNECT {self._target}")

    def _fail(self, message: str) -> None:
        if not self.done.done():
            self.done.set_exception(ProxyTunnelError(message))

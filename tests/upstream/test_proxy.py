"""Upstream calls through an egress proxy (HTTPS_PROXY / HTTP_PROXY / NO_PROXY): which hosts go through
it, and real gateway processes calling the emulator (plain http, absolute form) and a TLS upstream
(CONNECT tunnel) through a loopback proxy that checks credentials."""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import trustme
import yaml

from tests.processes import free_port
from tests.upstream.loopback_proxy import BackgroundLoop, LoopbackProxy, TlsUpstream
from tollway.upstream.http_client import HttpClient
from tollway.upstream.proxy import ProxyRules, ProxySettingError, parse_proxy_url

PASSWORD = "s3cret-proxy-pass"
AUTH = "Basic " + base64.b64encode(f"gw:{PASSWORD}".encode()).decode()


# --- which upstreams go through the proxy ---------------------------------------------------------------

def rules(**env: str) -> ProxyRules:
    return ProxyRules.from_environment(env)


def test_https_and_http_upstreams_use_their_own_variable() -> None:
    r = rules(HTTPS_PROXY="http://egress:3128", http_proxy="plain:8080")
    assert r.for_url(True, "api.deepseek.com", 443).address == "egress:3128"
    assert r.for_url(False, "gpu-box", 8000).address == "plain:8080"
    assert rules(HTTPS_PROXY="http://egress:3128").for_url(False, "gpu-box", 8000) is None
    assert rules(ALL_PROXY="http://all:1").for_url(False, "gpu-box", 8000).address == "all:1"
    assert rules(https_proxy="http://lower:1", HTTPS_PROXY="http://upper:2").https.address == "lower:1"


@pytest.mark.parametrize("no_proxy, host, port, direct", [
    ("*", "api.openai.com", 443, True),
    ("example.com", "example.com", 443, True),
    ("example.com", "api.example.com", 443, True),
    (".example.com", "api.example.com", 443, True),
    ("*.example.com", "example.com", 443, True),
    ("example.com", "notexample.com", 443, False),
    (".svc, .cluster.local", "vllm-decode.llm.svc", 8000, True),
    ("10.0.0.0/8", "10.1.2.3", 8000, True),
    ("10.0.0.0/8", "11.1.2.3", 8000, False),
    ("gpu-box:8000", "gpu-box", 8000, True),
    ("gpu-box:8000", "gpu-box", 9000, False),
    ("", "localhost", 8000, True),           # loopback is always direct
    ("", "127.0.0.53", 8000, True),
    ("", "::1", 8000, True),
    ("", "api.deepseek.com", 443, False),
    ("[2001:db8::1]", "2001:db8::1", 443, True),
])
def test_no_proxy_entries_and_loopback_go_direct(no_proxy: str, host: str, port: int, direct: bool) -> None:
    r = rules(HTTPS_PROXY="http://egress:3128", NO_PROXY=no_proxy)
    assert (r.for_url(True, host, port) is None) is direct


def test_credentials_become_basic_auth_and_are_never_shown() -> None:
    proxy = parse_proxy_url(f"http://gw:{PASSWORD}@egress:3128", "HTTPS_PROXY")
    assert proxy.authorization == AUTH
    r = rules(HTTPS_PROXY=f"http://gw:{PASSWORD}@egress:3128")
    assert PASSWORD not in f"{r.describe()} {proxy.address} {proxy!r}".replace(AUTH, "")
    assert r.describe() == "https via egress:3128"
    assert parse_proxy_url("http://a%40b:p%3Aq@egress", "X").authorization == \
        "Basic " + base64.b64encode(b"a@b:p:q").decode()


@pytest.mark.parametrize("value, message", [
    ("socks5://egress:1080", "HTTPS_PROXY: proxy scheme socks5:// is not supported"),
    ("https://egress:443", "HTTPS_PROXY: proxy scheme https:// is not supported"),
    ("http://egress:99999", "HTTPS_PROXY: the proxy's port is not a number"),
    ("http://:3128", "HTTPS_PROXY: no proxy host"),
])
def test_an_unusable_proxy_variable_is_a_clear_error(value: str, message: str) -> None:
    with pytest.raises(ProxySettingError, match=message.replace("(", r"\(")):
        rules(HTTPS_PROXY=value)


# --- real sockets ---------------------------------------------------------------------------------------

@pytest.fixture
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _proxy(background: BackgroundLoop, authorization: str | None = AUTH) -> LoopbackProxy:
    proxy = LoopbackProxy(authorization)
    background.run(proxy.start())
    return proxy


def _tls_upstream(background: BackgroundLoop, ca: trustme.CA) -> TlsUpstream:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("tls-upstream.test").configure_cert(context)
    upstream = TlsUpstream(context)
    background.run(upstream.start())
    return upstream


def _one_deployment(base_url: str) -> dict:
    timeouts = {"connect_s": 3, "first_byte_s": 5, "between_chunks_s": 5, "response_s": 10}
    return {"retry": {"max_attempts": 1},
            "providers": {"p": {"kind": "openai", "base_url": base_url, "timeouts": timeouts}},
            "deployments": {"d": {"provider": "p", "model": "gpt-4o-mini"}},
            "route_groups": {"chat": {"deployments": ["d"]}}}


def _chat(gw) -> httpx.Response:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=30)


def _ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.slow
def test_an_https_upstream_is_reached_through_a_connect_tunnel(background, ca, tmp_path, gateway_factory) -> None:
    proxy, upstream = _proxy(background), _tls_upstream(background, ca)
    env = {"HTTPS_PROXY": f"http://gw:{PASSWORD}@127.0.0.1:{proxy.port}", "NO_PROXY": "",
           "SSL_CERT_FILE": _ca_file(ca, tmp_path)}
    gw = gateway_factory(_one_deployment(f"https://tls-upstream.test:{upstream.port}/v1"), env=env)
    first, second = _chat(gw), _chat(gw)
    assert first.status_code == 200, first.text
    assert first.json()["choices"][0]["message"]["content"] == "through the tunnel"
    assert second.status_code == 200
    assert len(proxy.heads) == 1, "the tunnel is kept alive and reused"
    assert proxy.heads[0].startswith(f"CONNECT tls-upstream.test:{upstream.port} HTTP/1.1\r\n")
    assert f"Proxy-Authorization: {AUTH}\r\n" in proxy.heads[0]
    assert [h.split("\r\n", 1)[0] for h in upstream.heads] == ["POST /v1/chat/completions HTTP/1.1"] * 2
    assert "proxy-authorization" not in "".join(upstream.heads).lower(), "proxy credentials stay out of the tunnel"
    gw.terminate()
    assert PASSWORD not in gw.log_text()
    assert "upstream calls go through a proxy: https via 127.0.0.1:" in gw.log_text()


@pytest.mark.slow
def test_an_untrusted_certificate_through_the_tunnel_is_refused(background, ca, tmp_path, gateway_factory) -> None:
    """The tunnel changes nothing about TLS: without the test CA the upstream's certificate fails."""
    proxy, upstream = _proxy(background, None), _tls_upstream(background, ca)
    gw = gateway_factory(_one_deployment(f"https://tls-upstream.test:{upstream.port}/v1"),
                         env={"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"})
    response = _chat(gw)
    assert response.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in response.json()["error"]["message"]
    assert upstream.heads == []


@pytest.mark.slow
def test_an_http_upstream_gets_the_absolute_form_through_the_proxy(background, emulator, gateway_factory) -> None:
    proxy = _proxy(background)
    port = emulator.url.rsplit(":", 1)[1]
    gw = gateway_factory(_one_deployment(f"http://emulator.test:{port}/openai/v1"),
                         env={"HTTP_PROXY": f"http://gw:{PASSWORD}@127.0.0.1:{proxy.port}"})
    response = _chat(gw)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 16
    assert proxy.heads[0].startswith(f"POST http://emulator.test:{port}/openai/v1/chat/completions HTTP/1.1\r\n")
    assert f"Proxy-Authorization: {AUTH}\r\n" in proxy.heads[0]
    body = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
    streamed = httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=30)
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    assert len(emulator.requests()) == 2
    gw.terminate()
    assert PASSWORD not in gw.log_text() + str(gw.rows())


@pytest.mark.slow
def test_a_proxy_refusal_is_an_upstream_failure_naming_the_proxy_without_credentials(
        background, ca, tmp_path, gateway_factory) -> None:
    proxy, upstream = _proxy(background, "Basic bm8tb25lOmtub3dz"), _tls_upstream(background, ca)
    env = {"HTTPS_PROXY": f"http://gw:{PASSWORD}@127.0.0.1:{proxy.port}", "SSL_CERT_FILE": _ca_file(ca, tmp_path)}
    gw = gateway_factory(_one_deployment(f"https://tls-upstream.test:{upstream.port}/v1"), env=env)
    response = gw_response = _chat(gw)
    assert response.status_code == 502
    message = gw_response.json()["error"]["message"]
    assert f"proxy 127.0.0.1:{proxy.port} refused CONNECT tls-upstream.test:{upstream.port}: " \
           "HTTP/1.1 407 Proxy Authentication Required" in message
    rows = gw.rows(wait_for=1)
    assert len(rows) == 1 and rows[0]["status"] != "ok"
    gw.terminate()
    assert PASSWORD not in message + gw.log_text() + str(rows)
    assert upstream.heads == []


def test_a_loopback_upstream_is_called_directly_with_a_proxy_set(background) -> None:
    proxy = _proxy(background, None)
    upstream_port = free_port()

    async def main() -> tuple[bool, int]:
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", upstream_port)
        client = HttpClient(rules(HTTP_PROXY=f"http://127.0.0.1:{proxy.port}"))
        target = client.target(f"http://127.0.0.1:{upstream_port}/v1/chat/completions", {})
        response = await client.post(target, b"{}", 2.0)
        body = await response.read()
        await client.close()
        server.close()
        return body == b"ok", response.status

    assert asyncio.run(main()) == (True, 200)
    assert proxy.heads == []


def test_serve_refuses_an_unusable_proxy_at_start_without_showing_its_credentials(tmp_path) -> None:
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(_one_deployment("https://api.example.com/v1")))
    result = subprocess.run([sys.executable, "-m", "tollway.cli", "serve", "--config", str(config),
                             "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                 "HTTPS_PROXY": f"socks5://gw:{PASSWORD}@egress:1080"})
    assert result.returncode == 1
    assert "Error: HTTPS_PROXY: proxy scheme socks5:// is not supported" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout

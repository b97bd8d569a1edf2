"""The upstream call on three Python HTTP clients, to choose tollway's by measurement.

Each keeps `concurrency` requests in flight against the fake upstream for `seconds` and reports the CPU
seconds this process spent per request: exactly the cost a gateway pays for its client half. Streams are
read chunk by chunk as a relay would (each chunk handed on, nothing parsed). Libraries are imported
before the CPU clock starts, so only requests are counted.

    python alt_clients.py aiohttp|httpx|raw URL SECONDS CONCURRENCY plain|stream
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import aiohttp
import httptools
import httpx

PLAIN_BODY = json.dumps({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}).encode()
STREAM_BODY = json.dumps({"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
                          "stream": True, "stream_options": {"include_usage": True}}).encode()
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


async def with_aiohttp(url: str, body: bytes, stream: bool, stop_at: float) -> int:
    count = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop_at:
                async with session.post(url, data=body, headers=HEADERS) as resp:
                    if stream:
                        async for chunk in resp.content.iter_any():
                            _ = chunk
                    else:
                        await resp.read()
                    count += resp.status == 200
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count


async def with_httpx(url: str, body: bytes, stream: bool, stop_at: float) -> int:
    count = 0
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop_at:
                async with client.stream("POST", url, content=body, headers=HEADERS) as resp:
                    if stream:
                        async for chunk in resp.aiter_raw():
                            _ = chunk
                    else:
                        await resp.aread()
                    count += resp.status_code == 200
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count


class RawConnection(asyncio.Protocol):
    """One keep-alive connection; httptools parses the answer, chunks are handed on as they come."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport = None
        self.done: asyncio.Future | None = None
        self.chunks: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    async def request(self, head: bytes, body: bytes) -> int:
        self.chunks = []
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(head + body)
        return await self.done


async def with_raw(url: str, body: bytes, stream: bool, stop_at: float) -> int:
    parts = urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer sk-bench\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    count = 0

    async def worker() -> None:
        nonlocal count
        _, conn = await loop.create_connection(RawConnection, parts.hostname, parts.port)
        while time.perf_counter() < stop_at:
            status = await conn.request(head, body)  # never `count += await ...`: count is read before the await
            count += status == 200
        conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count


CLIENTS = {"aiohttp": with_aiohttp, "httpx": with_httpx, "raw": with_raw}
CONCURRENCY = 50


def main() -> None:
    global CONCURRENCY
    name, url, seconds, CONCURRENCY, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    import uvloop

    uvloop.install()
    stream = mode == "stream"
    body = STREAM_BODY if stream else PLAIN_BODY
    cpu0 = time.process_time()
    requests = asyncio.run(CLIENTS[name](url, body, stream, time.perf_counter() + seconds))
    cpu = time.process_time() - cpu0
    print(json.dumps({"client": name, "mode": mode, "requests": requests, "cpu_s": cpu, "seconds": seconds}))


if __name__ == "__main__":
    main()

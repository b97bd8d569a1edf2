"""Open-loop load at a fixed rate; every latency is measured from the request's *scheduled* send time.

A closed-loop tool (wrk) waits for answers before sending more, so a slow gateway quietly lowers the load
and hides its queueing ("coordinated omission"). Here request i is due at start + i/rate whatever happened
before, and its latency runs from that moment: if the gateway (or this client) falls behind, it shows.
Prints one JSON object: counts, errors, how late sends were, and latency / time-to-first-token percentiles.

    python openloop.py --url http://127.0.0.1:8100/v1/chat/completions --rate 200 --duration 10 [--stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time

import aiohttp

FIRST_TOKEN = b"w0"  # the fake upstream's first output token, as every gateway relays it


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list, or None for an empty one."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


class Results:
    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.ttft_ms: list[float] = []
        self.send_lag_ms: list[float] = []
        self.errors: dict[str, int] = {}

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def summary(self, rate: float, duration: float, scheduled: int) -> dict:
        out: dict = {"rate": rate, "duration_s": duration, "scheduled": scheduled, "measured": len(self.latency_ms),
                     "errors": self.errors}
        for name, values in (("latency_ms", self.latency_ms), ("ttft_ms", self.ttft_ms), ("send_lag_ms", self.send_lag_ms)):
            values.sort()
            out[name] = {f"p{q:g}": percentile(values, q) for q in (50, 90, 99, 99.9)} if values else None
            if values:
                out[name]["max"] = values[-1]
        return out


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict, stream: bool,
              due: float, results: Results | None) -> None:
    """Send one request and, when `results` is given, record its latency from `due`."""
    sent = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            first_token_at = None
            if stream:
                seen = b""
                async for chunk in resp.content.iter_any():
                    if first_token_at is None:
                        seen += chunk
                        if FIRST_TOKEN in seen:
                            first_token_at = time.perf_counter()
            else:
                await resp.read()
            done = time.perf_counter()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
    except (aiohttp.ClientError, OSError, RuntimeError, TimeoutError) as exc:  # counted; the run goes on
        if results is not None:
            results.error(type(exc).__name__ if not isinstance(exc, RuntimeError) else str(exc))
        return
    if results is None:
        return
    results.send_lag_ms.append((sent - due) * 1000)
    results.latency_ms.append((done - due) * 1000)
    if stream:
        if first_token_at is None:
            results.error("no first token in the stream")
        else:
            results.ttft_ms.append((first_token_at - due) * 1000)


async def run(url: str, rate: float, duration: float, warmup: float, stream: bool, api_key: str, model: str) -> dict:
    payload = {"model": model, "max_tokens": 64,
               "messages": [{"role": "user", "content": "Say hello in one short sentence, please."}]}
    if stream:
        payload.update(stream=True, stream_options={"include_usage": True})
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
    results = Results()
    tasks: set[asyncio.Task] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter() + 0.05
        total = int((warmup + duration) * rate)
        warm = int(warmup * rate)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(session, url, body, headers, stream, due, results if i >= warm else None))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    return results.summary(rate, duration, total - warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent first and not measured")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--model", default="chat")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    summary = asyncio.run(run(args.url, args.rate, args.duration, args.warmup, args.stream, args.api_key, args.model))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Micro-benchmark: what a provider's keys add to each upstream attempt, in process, with no sockets.

Per attempt, a provider with keys pays the walk's check that a key is usable, the pick of the next key
in turn, the coroutine that tells the ring how the attempt went, and the ring's note of the answer.
This times exactly that around an attempt that does nothing (so the figure is the added cost alone),
for a provider without keys (the call's own coroutine, nothing else), with one key and with three, and
with three keys one of which is held off (the pick then skips it).

    .venv/bin/python benchmarks/key_ring.py [--attempts 200000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from tollway.config import Config
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.table import RouteTable
from tollway.upstream.calls import _with_key

SECRETS = {"BENCH_KEY_A": "sk-bench-a", "BENCH_KEY_B": "sk-bench-b", "BENCH_KEY_C": "sk-bench-c"}


class Answer:
    key = None


async def attempt(client, dep, key, endpoint, payload, deadline, headers) -> Answer:
    return Answer()


def deployment(envs: list[str]):
    provider: dict = {"kind": "deepseek", "base_url": "http://127.0.0.1:1/v1"}
    if envs:
        provider["api_key_envs"] = envs
    table = RouteTable(Config.model_validate({"providers": {"ds": provider},
                                              "deployments": {"d": {"provider": "ds", "model": "m"}},
                                              "route_groups": {"g": {"deployments": ["d"]}}}))
    return table.deployments["d"]


async def per_attempt(dep, attempts: int) -> float:
    """Seconds per attempt: the walk's usable() check, then the call as calls.call makes it."""
    keys = dep.keys
    started = time.perf_counter()
    if keys is None:
        for _ in range(attempts):
            await attempt(None, dep, None, "chat", b"", 0.0, None)
    else:
        for _ in range(attempts):
            keys.usable()
            await _with_key(keys, attempt, None, dep, "chat", b"", 0.0, None)
    return (time.perf_counter() - started) / attempts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.update(SECRETS)
    one_held_off = deployment(list(SECRETS))
    assert one_held_off.keys is not None
    one_held_off.keys.failed(one_held_off.keys.keys[1], Failure(FailureKind.UPSTREAM_AUTH, "revoked", 401))
    cases = {"no keys": deployment([]), "1 key": deployment(["BENCH_KEY_A"]), "3 keys": deployment(list(SECRETS)),
             "3 keys, 1 held off": one_held_off}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.rounds):  # interleaved, so a neighbour's burst of CPU hits every case alike
        for name, dep in cases.items():
            best[name] = min(best[name], asyncio.run(per_attempt(dep, args.attempts)))
    base = best["no keys"]
    print(f"best of {args.rounds} rounds x {args.attempts} attempts (µs per attempt; added over no keys)")
    for name, seconds in best.items():
        print(f"{name:20} {seconds * 1e6:6.3f}  {'' if name == 'no keys' else f'+{(seconds - base) * 1e6:.3f}'}")


if __name__ == "__main__":
    main()

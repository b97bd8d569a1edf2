"""Which fault, if any, a request gets.

Selection must be reproducible so failover tests are not flaky: `every`/`first`/`after` count the
requests of one model (1-based), and `probability` draws from a per-model RNG seeded from the config
seed and the model name, so one model's traffic never shifts another model's draws.
"""

from __future__ import annotations

import random

from tollway.emulator.profiles import Fault

# kinds answered with an error before any output (the rest shape or delay the output itself)
ERROR_KINDS = frozenset({"rate_limit", "server_error", "overloaded", "insufficient_balance", "context_length"})


def fault_fires(fault: Fault, sequence: int, rng: random.Random) -> bool:
    """Whether `fault` applies to the `sequence`-th request (1-based) of its model."""
    if fault.probability is not None:
        return rng.random() < fault.probability
    if fault.every is not None:
        return sequence % fault.every == 0
    if fault.first is not None:
        return sequence <= fault.first
    if fault.after is not None:
        return sequence > fault.after
    return True


def pick_fault(faults: list[Fault], sequence: int, rng: random.Random, key: str | None = None) -> Fault | None:
    """The first listed fault that fires for this request (presenting `key`); later faults are not consulted.
    A fault aimed at another key is passed over without a draw."""
    for fault in faults:
        if fault.api_key is not None and fault.api_key != key:
            continue
        if fault_fires(fault, sequence, rng):
            return fault
    return None


def model_rng(seed: int, model: str) -> random.Random:
    """A per-model RNG; the same seed and model always give the same sequence of draws."""
    return random.Random(f"{seed}:{model}")

"""Microseconds per plan step (filter + rank) for each strategy: `python -m tests.routing.plan_bench`.

Not a test (no timing assertions): a measurement to run before and after a change to the planner or a
strategy, on the same machine in the same minute; results go in docs/performance.md. Every deployment has
warm live statistics, so `fastest` ranks by them instead of measuring first.
"""

from __future__ import annotations

import time

from multidict import CIMultiDict

from tests.routing.support import planner, request, table

ALL = ["cheap-text", "vision-mid", "long-big", "eu-model", "local-vllm"]
GROUPS = {
    "priority": {"deployments": ALL},
    "priority_prefer": {"deployments": ALL, "prefer_strong_in": {"zh": 0.3}},
    "cheapest": {"deployments": ALL, "strategy": "cheapest"},
    "fastest": {"deployments": ALL, "strategy": "fastest", "explore": 0.0},
    "weighted": {"deployments": ALL, "strategy": "weighted", "weights": {"cheap-text": 90, "vision-mid": 10}},
    "tiers": {"deployments": ALL, "strategy": "tiers", "tiers": {"low": ["cheap-text"], "default": ["long-big"]}},
}
ROUNDS, PER_ROUND = 15, 20_000


def main() -> None:
    tbl = table(GROUPS)
    for dep in tbl.deployments.values():
        for _ in range(30):
            dep.stats.observe_ttft(0.2)
            dep.stats.observe_reply(0.5, 20)
    plan, headers = planner(), CIMultiDict()
    for name in GROUPS:
        creq, group = request(name), tbl.group_for(name)
        best = float("inf")
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(PER_ROUND):
                plan.rank(plan.filter(group, creq, None, headers), headers)
            best = min(best, (time.perf_counter() - started) / PER_ROUND)
        print(f"{name:16s} {best * 1e6:6.2f} µs per plan (best of {ROUNDS} x {PER_ROUND})")


if __name__ == "__main__":
    main()

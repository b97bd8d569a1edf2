"""Chaos: random faults on every deployment over thousands of requests, and not one residency violation.

Virtual keys carry the policies (one key restricted to eu + self-hosted, one unrestricted), route groups
and request headers add their own; retries, failovers, hedges, shadow copies and breaker trips all happen
along the way. The ledger must show every attempt of the restricted traffic inside its allowed set, and
`tollway audit residency` must say so from the ledger alone (and must catch the unrestricted key's rows).
"""

import asyncio
import random
import subprocess
from collections import Counter

import httpx
import pytest

from tests.processes import TOLLWAY
from tests.routing.support import emulator_and_gateway, provider

pytestmark = pytest.mark.slow

REQUESTS = 2000
EU_SELF = {"eu", "self-hosted"}
FAULTS = [
    {"kind": "rate_limit", "probability": 0.06, "retry_after_s": 2},
    {"kind": "server_error", "probability": 0.06, "status": 503},
    {"kind": "cut_stream", "probability": 0.04, "after_tokens": 1},
    {"kind": "cut_stream", "probability": 0.03, "after_tokens": 0},
    {"kind": "hang", "probability": 0.015, "hang_s": 0.6},
    {"kind": "content_filter", "probability": 0.01},
]
TIMEOUTS = {"connect_s": 1, "first_byte_s": 0.3, "between_chunks_s": 0.3, "response_s": 0.4}
DEPLOYMENTS = {  # name -> (provider, model)
    "cn-1": ("deepseek", "deepseek-flash"), "sg-1": ("qwen", "qwen3.5-plus"), "us-1": ("openai", "gpt-x"),
    "eu-1": ("mistral", "eu-large"), "eu-2": ("scaleway", "eu-small"),
    "local-1": ("gpu-a", "local-a"), "local-2": ("gpu-b", "local-b"),
}
ALL = list(DEPLOYMENTS)
GATEWAY = {
    "server": {"request_deadline_s": 5},
    "retry": {"max_attempts": 4, "retries_per_deployment": 1, "backoff_base_s": 0.005, "backoff_max_s": 0.02,
              "retry_after_cap_s": 0.5},
    "breaker": {"consecutive_failures": 4, "open_s": 0.5},
    "ledger": {"flush_interval_s": 0.1},
    "providers": {
        "deepseek": provider("deepseek", "cn", timeouts=TIMEOUTS), "qwen": provider("qwen", "sg", timeouts=TIMEOUTS),
        "openai": provider("openai", "us", timeouts=TIMEOUTS),
        "mistral": provider("openai", "eu", kind="openai", timeouts=TIMEOUTS),
        "scaleway": provider("openai", "eu", kind="openai", timeouts=TIMEOUTS),
        "gpu-a": provider("vllm", "self-hosted", timeouts=TIMEOUTS),
        "gpu-b": provider("sglang", "self-hosted", timeouts=TIMEOUTS),
    },
    "deployments": {name: {"provider": p, "model": m, "price": {"input": "1", "output": "2"}}
                    for name, (p, m) in DEPLOYMENTS.items()},
    "route_groups": {
        "mixed": {"deployments": ["cn-1", "us-1", "eu-1", "sg-1", "local-1", "eu-2", "local-2"],
                  "hedge": {"after_ms": 40, "budget_percent": 20}, "shadow": {"deployment": "us-1", "sample": 0.2}},
        "cheap": {"strategy": "cheapest", "deployments": ALL, "hedge": {"after_ms": 40, "budget_percent": 20},
                  "shadow": {"deployment": "eu-2", "sample": 0.2}},
        "eu-group": {"strategy": "fastest", "residency": ["eu", "self-hosted"], "deployments": ALL,
                     "shadow": {"deployment": "eu-1", "sample": 0.3}, "hedge": {"after_ms": 40, "budget_percent": 30}},
    },
}
EMULATOR = {"seed": 11, "default": {"output_tokens": 4, "faults": FAULTS},
            "models": {"local-a": {"dialect": "vllm"}, "local-b": {"dialect": "sglang"}}}


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    keys = {"eu-team": "eu,self-hosted", "global": ""}
    with emulator_and_gateway(tmp_path_factory.mktemp("chaos"), EMULATOR, GATEWAY, keys) as (emu, gw, secrets):
        yield emu, gw, secrets


def plan_requests(rng: random.Random) -> list[dict]:
    """Every request: which key, model, residency header and mode; its id says which policy applies."""
    jobs = []
    for i in range(REQUESTS):
        key = "eu-team" if i % 2 == 0 else "global"
        model = rng.choice(["mixed", "cheap", "eu-group"])
        header = rng.choice([None, None, "eu", "self-hosted", "eu,self-hosted,cn", "cn"])
        shown = (header or "none").replace(",", "+")  # an x-request-id allows no comma: the list with + in the id
        jobs.append({"id": f"{key}.{i}.{shown}", "key": key, "model": model, "header": header,
                     "stream": rng.random() < 0.5})
    return jobs


async def send_all(base_url: str, secrets: dict[str, str], jobs: list[dict]) -> Counter:
    statuses: Counter = Counter()
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            job = queue.get_nowait()
            headers = {"Authorization": f"Bearer {secrets[job['key']]}", "x-request-id": job["id"]}
            if job["header"]:
                headers["x-tollway-residency"] = job["header"]
            body = {"model": job["model"], "stream": job["stream"], "messages": [{"role": "user", "content": "hi"}]}
            resp = await client.post("/chat/completions", json=body, headers=headers)
            statuses[resp.status_code] += 1

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(16)))
    return statuses


def allowed_for(row: dict) -> set[str] | None:
    """The policy a row's request was under: its key's, its header's and its group's, intersected."""
    key, _, header = row["id"].split(":")[0].split(".")
    sets = [EU_SELF] if key == "eu-team" else []
    if header != "none":
        sets.append(set(header.split("+")))
    if row["route_group"] == "eu-group":
        sets.append(EU_SELF)
    return set.intersection(*sets) if sets else None


def audit(ledger, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "audit", "residency", "--ledger", str(ledger), *args],
                          capture_output=True, text=True, timeout=120)


def test_no_residency_violation_under_random_faults(chaos):
    emu, gw, secrets = chaos
    jobs = plan_requests(random.Random(5))
    statuses = asyncio.run(send_all(gw.base_url, secrets, jobs))
    assert sum(statuses.values()) == REQUESTS
    assert statuses[200] > REQUESTS * 0.6, statuses
    assert set(statuses) <= {200, 400, 429, 502, 503, 504}, statuses
    assert gw.terminate() == 0  # flushes every row, shadow copies included

    rows = gw.rows()
    by_id = {r["id"]: r for r in rows}
    assert all(job["id"] in by_id for job in jobs), "one row per request"
    eu_key = secrets["eu-team"].split("_")[1]
    checked: Counter = Counter()
    for row in rows:
        allowed = allowed_for(row)
        sent = [a for a in row["attempts"] if a["outcome"] != "skipped"]
        checked.update(a["outcome"] for a in sent)
        if row["id"].startswith("eu-team."):
            assert row["key_id"] == eu_key
        if allowed is None:
            continue
        outside = [(a["deployment"], a["jurisdiction"], a["outcome"]) for a in sent if a["jurisdiction"] not in allowed]
        assert not outside, f"{row['id']} (allowed {sorted(allowed)}) reached {outside}"
        if row["deployment"]:
            assert row["jurisdiction"] in allowed
        if not allowed:  # e.g. the eu team asking for cn only: refused, sent nowhere
            assert (row["http_status"], sent) == (503, []), row
    # the chaos really happened: retries, failovers, hedges, shadow copies, refusals
    assert checked["failover"] > 50 and checked["retry"] > 20 and checked["cancelled"] > 5 and checked["shadow"] > 50, checked
    assert sum(1 for r in rows if r["error"].startswith("No deployment of model") and "residency" in r["error"]) > 50
    unrestricted = {a["jurisdiction"] for r in rows if r["id"].startswith("global.") and r["id"].endswith(".none")
                    and r["route_group"] != "eu-group" for a in r["attempts"] if a["outcome"] != "skipped"}
    assert {"cn", "us"} <= unrestricted, "unrestricted traffic did go outside eu and self-hosted"

    clean = audit(gw.ledger, "--key", eu_key)  # the policy comes from the key store
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "OK: no attempt left eu, self-hosted" in clean.stdout
    caught = audit(gw.ledger, "--key", secrets["global"].split("_")[1], "--allowed", "eu,self-hosted")
    assert caught.returncode == 1 and "VIOLATION" in caught.stdout

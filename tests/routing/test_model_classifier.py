"""The model-based classifier against a grading server on a loopback socket: grade, cost, timeout, fallbacks."""

import asyncio
from decimal import Decimal

import orjson
from aiohttp import web

from tests.processes import free_port
from tests.routing.support import request
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.routing.features import RequestFeatures
from tollway.routing.model_classifier import model_complexity
from tollway.routing.residency import UNRESTRICTED, ResidencyPolicy
from tollway.routing.settings import ComplexitySettings
from tollway.routing.table import RouteTable
from tollway.upstream.http_client import HttpClient

SETTINGS = ComplexitySettings(classifier="model", deployment="grader", timeout_ms=400)
HARD = "Prove step by step that the series converges, then analyze and compare two proofs."


def grader_table(port: int) -> RouteTable:
    config = Config.model_validate({
        "providers": {"small": {"kind": "qwen", "base_url": f"http://127.0.0.1:{port}/v1", "jurisdiction": "sg"}},
        "deployments": {"grader": {"provider": "small", "model": "qwen3-8b", "price": {"input": "0.01", "output": "0.02"}}},
        "route_groups": {"g": {"deployments": ["grader"]}},
    })
    return RouteTable(config, None, resolve_secrets=False)


def classify(answer: str | None, delay_s: float = 0.0, status: int = 200, policy: ResidencyPolicy = UNRESTRICTED,
             content: str = HARD):
    """Start a grading server answering `answer` after `delay_s`; return (complexity, record, requests seen)."""
    seen: list[dict] = []

    async def grade(http: web.Request) -> web.Response:
        seen.append(await http.json())
        await asyncio.sleep(delay_s)
        if status != 200:
            return web.json_response({"error": {"message": "overloaded", "type": "server_error"}}, status=status)
        body = {"id": "x", "object": "chat.completion", "model": "qwen3-8b",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 150, "completion_tokens": 1, "total_tokens": 151}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def main():
        port = free_port()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", grade)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        client = HttpClient()
        try:
            dep = grader_table(port).deployments["grader"]
            pricer = DeploymentPricer(Catalog.load(include_builtin=False))
            found = await model_complexity(client, dep, RequestFeatures(request(content=content)), SETTINGS, policy, pricer)
            return (*found, dep.in_flight)
        finally:
            await client.close()
            await runner.cleanup()

    complexity, record, in_flight = asyncio.run(main())
    assert in_flight == 0
    return complexity, record, seen


def test_the_models_grade_is_used_and_its_cost_recorded():
    complexity, record, seen = classify("high")
    assert complexity.level == "high" and complexity.source == "model grader"
    assert record.outcome == "routing_overhead" and record.kind == "classifier"
    assert (record.prompt_tokens, record.completion_tokens) == (150, 1)
    assert record.cost_usd == Decimal("0.0000015") + Decimal("0.00000002")
    assert seen[0]["model"] == "qwen3-8b" and seen[0]["max_tokens"] == 3
    assert HARD in seen[0]["messages"][-1]["content"]


def test_an_answer_that_is_not_a_grade_falls_back_to_the_heuristic_but_is_still_paid():
    complexity, record, _ = classify("I think it is tricky")
    assert complexity.source.startswith("heuristic; model not used: grader gave no grade")
    assert complexity.level == "high"  # the heuristic's own verdict on HARD
    assert record.cost_usd > 0 and record.error == "the answer was not low, medium or high"


def test_a_slow_model_times_out_and_the_heuristic_decides():
    complexity, record, _ = classify("low", delay_s=1.0, content="hi there")
    assert complexity.level == "low" and "timed out" in complexity.source
    assert record.cost_usd > 0, "a timed-out call was likely read: its prompt is charged as an estimate"
    assert record.latency_ms < 900


def test_a_failed_call_costs_nothing():
    complexity, record, _ = classify("high", status=503)
    assert "failed" in complexity.source and record.cost_usd == 0 and record.status == 503


def test_a_grader_outside_the_residency_policy_is_never_asked():
    complexity, record, seen = classify("high", policy=ResidencyPolicy(frozenset({"eu"}), ("key k: eu",)))
    assert record is None and seen == []
    assert "outside the residency policy" in complexity.source

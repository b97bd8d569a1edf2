"""Asking a cheap model how hard a request is, with a deadline and the heuristic as the fallback.

A small model (Qwen3-8B, GLM-4-9B at about $0.01 per million tokens) grades a request better than
regular expressions do, for a fraction of a cent. It is still a network call on the request path, so it
gets a short timeout, its own breaker check, and any failure (timeout, error, an answer that is not a
grade) falls back to the heuristic. What it cost is returned as a `routing_overhead` attempt so the
request's ledger row carries it. It is only asked when its jurisdiction is inside the request's
residency policy: the prompt it reads is the client's data, and only when the group's spillover does not
find its deployment full (the call counts in that deployment's in-flight count like any attempt).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from decimal import Decimal

import orjson

from tollway.catalog.cost import try_cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.core.usage import Usage, estimate_usage
from tollway.providers.failure import FailureKind
from tollway.routing.attempts import AttemptRecord
from tollway.routing.complexity import Complexity, heuristic_complexity
from tollway.routing.features import RequestFeatures
from tollway.routing.residency import ResidencyPolicy
from tollway.routing.settings import ComplexitySettings
from tollway.routing.spillover import Saturation, release, try_acquire
from tollway.routing.table import RoutedDeployment
from tollway.upstream import calls
from tollway.upstream.calls import UpstreamFailure
from tollway.upstream.http_client import HttpClient

PROMPT_CHARS = 2000
INSTRUCTION = ("You grade how hard a request is for a language model to answer well. Reply with exactly one "
               "word: low (chit-chat, lookup, short rewrite), medium (ordinary writing, simple code or "
               "reasoning) or high (multi-step reasoning, mathematics, non-trivial code, long analysis).")
_GRADE = re.compile(r"\b(low|medium|high)\b", re.IGNORECASE)
_SCORES = {"low": 0.0, "medium": 0.5, "high": 1.0}


async def model_complexity(client: HttpClient, dep: RoutedDeployment, features: RequestFeatures,
                           settings: ComplexitySettings, policy: ResidencyPolicy,
                           pricer: DeploymentPricer | None, saturated: Saturation | None = None
                           ) -> tuple[Complexity, AttemptRecord | None]:
    """The model's grade, or the heuristic's with the reason the model was not used; plus the call's record.

    `saturated` is the group's spillover check: a full grading deployment is not asked (the grade is
    optional, a slot over the cap is not)."""
    fallback = heuristic_complexity(features, settings)
    if not policy.permits(dep.jurisdiction):
        return _fallback(fallback, f"{dep.name} is outside the residency policy"), None
    full = try_acquire(dep, saturated)  # the slot is taken here, with the check; released in `finally`
    if full is not None:
        return _fallback(fallback, f"{dep.name} saturated ({full})"), None
    if not dep.breaker.allow():
        release(dep)
        return _fallback(fallback, f"{dep.name} circuit breaker open"), None
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        reply = await calls.call(client, dep, "chat", _payload(dep, features.text), started + settings.timeout_ms / 1000)
    except UpstreamFailure as exc:
        failure = exc.failure
        timed_out = failure.kind is FailureKind.TIMEOUT
        if timed_out:
            dep.breaker.abandon()  # our short budget ran out: says nothing about the deployment's health
        else:
            dep.breaker.record(not failure.kind.counts_against_health)
        record = _record(dep, started, b"", f"{failure.kind.value}: {failure.message}"[:300], pricer, features,
                         failure.status, billed=timed_out)
        return _fallback(fallback, f"{dep.name} {'timed out' if timed_out else 'failed: ' + failure.kind.value}"), record
    finally:
        release(dep)
    dep.breaker.record(True)
    record = _record(dep, started, reply.body, "", pricer, features)
    grade = _grade(reply.body)
    if grade is None:
        record.error = "the answer was not low, medium or high"
        return _fallback(fallback, f"{dep.name} gave no grade"), record
    return Complexity(grade, _SCORES[grade], (f"graded {grade}",), f"model {dep.name}"), record


def _payload(dep: RoutedDeployment, text: str) -> bytes:
    sample = text if len(text) <= PROMPT_CHARS else text[:PROMPT_CHARS // 2] + "\n...\n" + text[-PROMPT_CHARS // 2:]
    return orjson.dumps({"model": dep.upstream_model, "max_tokens": 3, "temperature": 0, "stream": False,
                         "messages": [{"role": "system", "content": INSTRUCTION},
                                      {"role": "user", "content": f"Request to grade:\n\n{sample}"}]})


def _grade(body: bytes) -> str | None:
    try:
        parsed = orjson.loads(body)
        content = parsed["choices"][0]["message"]["content"] or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    found = _GRADE.search(content)
    return found.group(1).lower() if found else None


def _record(dep: RoutedDeployment, started: float, body: bytes, error: str, pricer: DeploymentPricer | None,
            features: RequestFeatures, status: int | None = None, billed: bool = True) -> AttemptRecord:
    """The classifier call as a ledger attempt, priced from its reported usage, else an estimate of its prompt
    (a timed-out call was likely read and billed); a refused call (`billed=False`) cost nothing."""
    loop = asyncio.get_running_loop()
    record = AttemptRecord(dep, "routing_overhead", error, status, (loop.time() - started) * 1000, "classifier",
                           cost_usd=Decimal(0), ended_at=loop.time())
    if billed:
        usage = _usage(dep, body, features)
        price = pricer.price(dep, datetime.now(timezone.utc), usage.prompt_tokens) if pricer is not None else None
        record.cost_usd = try_cost_usd(usage, price)
        record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens
    return record


def _usage(dep: RoutedDeployment, body: bytes, features: RequestFeatures) -> Usage:
    """Reported usage when the reply has it; otherwise what the prompt was likely billed (no output)."""
    if body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        usage = dep.dialect.usage_from_body(parsed) if isinstance(parsed, dict) else None
        if usage is not None:
            return usage
    return estimate_usage(INSTRUCTION + features.text[:PROMPT_CHARS], "")


def _fallback(heuristic: Complexity, why: str) -> Complexity:
    return Complexity(heuristic.level, heuristic.score, heuristic.signals, f"heuristic; model not used: {why}")

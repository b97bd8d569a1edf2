"""Walking a request's ordered plan: retry, back off, fail over, respect breakers and the deadline.

The walker is the same for streamed and non-streamed requests: it is handed an `attempt` coroutine that
either returns a result (a complete reply, or a stream whose first event arrived) or raises an
UpstreamFailure. What happens next depends on what the failure means (see providers/failure.py): an empty
balance or a content refusal rules out the whole provider for this request, a context-length error rules
out every deployment no larger than the one that refused, a rate limit is retried after Retry-After when
that is short, a client error goes straight back to the client.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from tollway.config import RetrySettings
from tollway.gateway.errors import GatewayError
from tollway.gateway.upstream import UpstreamFailure
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.table import RoutedDeployment

T = TypeVar("T")
OUT_OF_FUNDS_OPEN_S = 60.0  # an empty balance does not refill in seconds: keep the breaker open longer


@dataclass(slots=True)
class AttemptRecord:
    deployment: RoutedDeployment
    outcome: str  # ok | retry | failover | fatal | skipped
    error: str = ""
    status: int | None = None
    latency_ms: float = 0.0
    kind: str = ""

    def to_ledger(self) -> dict:
        dep = self.deployment
        return {"deployment": dep.name, "provider": dep.provider, "jurisdiction": dep.jurisdiction,
                "outcome": self.outcome, "status": self.status, "error": self.error, "kind": self.kind,
                "latency_ms": round(self.latency_ms, 3)}


class Walk:
    """One request's journey through its plan; `attempts` is what the ledger and headers report."""

    def __init__(self, settings: RetrySettings, deadline: float) -> None:
        self.settings = settings
        self.deadline = deadline
        self.attempts: list[AttemptRecord] = []
        self._excluded_providers: set[str] = set()
        self._min_context = 0
        self._failures: list[Failure] = []

    @property
    def tries(self) -> int:
        return sum(1 for a in self.attempts if a.outcome != "skipped")

    async def run(self, model: str, plan: list[RoutedDeployment],
                  attempt: Callable[[RoutedDeployment], Awaitable[T]]) -> tuple[RoutedDeployment, T]:
        for dep in plan:
            if not self._eligible(dep):
                continue
            outcome = await self._try_deployment(dep, attempt)
            if outcome is not None:
                return dep, outcome
            if self.tries >= self.settings.max_attempts or self._past_deadline():
                break
        raise self._final_error(model)

    def _eligible(self, dep: RoutedDeployment) -> bool:
        reason = ""
        if dep.provider in self._excluded_providers:
            reason = f"provider {dep.provider} ruled out earlier in this request"
        elif dep.context_window <= self._min_context:
            reason = f"context window {dep.context_window} is not larger than one that was too small"
        elif not dep.breaker.allow():
            reason = "circuit breaker open"
        if reason:
            self.attempts.append(AttemptRecord(dep, "skipped", reason))
        return not reason

    async def _try_deployment(self, dep: RoutedDeployment, attempt: Callable[[RoutedDeployment], Awaitable[T]]) -> T | None:
        loop = asyncio.get_running_loop()
        retries = 0
        while True:
            started = loop.time()
            try:  # each attempt bounds itself by min(its own timeouts, self.deadline): one timer, not two
                result = await attempt(dep)
            except UpstreamFailure as exc:
                failure = exc.failure
            except BaseException:
                dep.breaker.abandon()
                raise
            else:
                dep.breaker.record(True)
                self.attempts.append(AttemptRecord(dep, "ok", latency_ms=(loop.time() - started) * 1000))
                return result
            record = AttemptRecord(dep, "failover", _redact(failure.message, dep), failure.status,
                                   (loop.time() - started) * 1000, failure.kind.value)
            self.attempts.append(record)
            self._failures.append(failure)
            delay = self._after_failure(dep, failure, retries)
            if delay is None:
                return None
            record.outcome = "retry"
            await asyncio.sleep(delay)
            retries += 1

    def _after_failure(self, dep: RoutedDeployment, failure: Failure, retries: int) -> float | None:
        """Update breakers and exclusions; return a delay to retry the same deployment, or None to move on."""
        kind = failure.kind
        dep.breaker.record(not kind.counts_against_health)
        if kind is FailureKind.CLIENT_ERROR:
            self.attempts[-1].outcome = "fatal"
            raise _client_error(failure, dep)
        if kind in (FailureKind.OUT_OF_FUNDS, FailureKind.CONTENT_FILTER):
            self._excluded_providers.add(dep.provider)
            if kind is FailureKind.OUT_OF_FUNDS:  # the balance is the account's: hold off all its deployments
                for sibling in dep.same_provider:
                    sibling.breaker.force_open(OUT_OF_FUNDS_OPEN_S)
            return None
        if kind is FailureKind.CONTEXT_LENGTH:
            self._min_context = max(self._min_context, dep.context_window)
            return None
        if not kind.retry_same or retries >= self.settings.retries_per_deployment:
            return None
        if self.tries >= self.settings.max_attempts or not dep.breaker.allow():
            return None
        delay = self._backoff(retries)
        if failure.retry_after_s is not None:
            if failure.retry_after_s > self.settings.retry_after_cap_s:
                return None
            delay = max(delay, failure.retry_after_s)
        if asyncio.get_running_loop().time() + delay >= self.deadline:
            return None
        return delay

    def _backoff(self, retries: int) -> float:
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * (2 ** retries))
        return random.uniform(ceiling / 2, ceiling)

    def _past_deadline(self) -> bool:
        return asyncio.get_running_loop().time() >= self.deadline

    def _final_error(self, model: str) -> GatewayError:
        detail = "; ".join(f"{a.deployment.name} ({a.deployment.provider}): {a.kind + ' ' if a.kind else ''}"
                           f"{a.status or ''} {a.error}".replace("  ", " ") for a in self.attempts)
        kinds = {f.kind for f in self._failures}
        if not self._failures:
            return GatewayError(503, f"No deployment is available for model '{model}': {detail}.",
                                "service_unavailable", "no_deployment_available")
        if kinds == {FailureKind.RATE_LIMITED}:
            waits = [f.retry_after_s for f in self._failures if f.retry_after_s is not None]
            headers = {"Retry-After": str(max(1, round(min(waits))))} if waits else {}
            return GatewayError(429, f"Every deployment for model '{model}' is rate limited: {detail}.",
                                "rate_limit_error", "rate_limited", headers=headers)
        if kinds <= {FailureKind.CONTENT_FILTER}:
            return GatewayError(400, f"Every provider for model '{model}' refused the content: {detail}.",
                                "invalid_request_error", "content_filter")
        if kinds <= {FailureKind.CONTEXT_LENGTH}:
            return GatewayError(400, f"The prompt is too long for every deployment of model '{model}': {detail}.",
                                "invalid_request_error", "context_length_exceeded", "messages")
        if kinds <= {FailureKind.TIMEOUT}:
            return GatewayError(504, f"Every deployment for model '{model}' timed out: {detail}.",
                                "timeout", "upstream_timeout")
        if kinds <= {FailureKind.OUT_OF_FUNDS, FailureKind.UPSTREAM_AUTH}:
            return GatewayError(503, f"No deployment for model '{model}' can serve now: {detail}.",
                                "service_unavailable", "no_deployment_available")
        return GatewayError(502, f"Every deployment for model '{model}' failed: {detail}.",
                            "upstream_error", "all_deployments_failed")


def _client_error(failure: Failure, dep: RoutedDeployment) -> GatewayError:
    """The upstream rejected the request itself: hand its status and message back, in OpenAI's shape."""
    return GatewayError(failure.status or 400, f"{_redact(failure.message, dep)} (from {dep.name})",
                        "invalid_request_error", "upstream_rejected_request")


def _redact(text: str, dep: RoutedDeployment) -> str:
    """Upstream messages sometimes quote the key they were sent; never pass it on."""
    auth = dep.headers.get("Authorization", "")
    secret = auth.removeprefix("Bearer ").strip()
    if secret and secret in text:
        text = text.replace(secret, "***")
    return text[:500]


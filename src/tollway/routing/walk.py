"""Walking a request's ordered plan: retry, back off, fail over, respect breakers and the deadline.

The walker is the same for streamed and non-streamed requests: it is handed an `attempt` coroutine that
either returns a result (a complete reply, or a stream whose first event arrived) or raises an
UpstreamFailure. What happens next depends on what the failure means (see providers/failure.py): an empty
balance or a content refusal rules out the whole provider for this request, a context-length error rules
out every deployment no larger than the one that refused, a rate limit is retried after Retry-After when
that is short, a client error goes straight back to the client.

With a hedge policy in the plan, a deployment that has not answered within the policy's delay gets a
racing partner (the next eligible candidate); the first to answer wins and the other is cancelled and
recorded as a `cancelled` attempt with its estimated cost (see routing/hedging.py).

A provider with several keys (routing/key_ring.py): when the provider refuses the key an attempt was sent
with (revoked, out of funds) and another of its keys is usable, the same deployment is tried again at once
with that key, within the request's attempt budget (`max_attempts`), and the refusal counts against the
key, not the deployment. A deployment whose provider has no usable key is skipped.

The walker also keeps each deployment's in-flight count exact, for spillover: an attempt counts from its
start until it fails, is cancelled, or (when it answered) until the request is finished and `release()` is
called. Every attempt (first tries, retries, both racers of a hedge) takes its slot with the spillover
check in the same synchronous step, right before it starts: a racer's slot is taken before its task is
created, because the task runs only after the walk's next await and concurrent requests would all see the
slot free until then. A deployment found full is deferred (tried last, when nothing else is left); a
retry that finds it full moves on (in a race, always: the other racer carries on); a hedge partner is
never one that is full.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, TypeVar, cast

from tollway.config import RetrySettings
from tollway.core.errors import GatewayError
from tollway.providers.failure import Failure, FailureKind
from tollway.routing.attempts import EXTRA_COST_OUTCOMES, NOT_TRIES, AttemptRecord
from tollway.routing.spillover import has_room, release, try_acquire
from tollway.routing.table import RoutedDeployment
from tollway.upstream.calls import UpstreamFailure

if TYPE_CHECKING:
    from tollway.routing.router import RoutePlan

T = TypeVar("T")
OUT_OF_FUNDS_OPEN_S = 60.0  # an empty balance does not refill in seconds: keep the breaker open longer
_ZERO = Decimal(0)
_NONE: frozenset = frozenset()


class Walk:
    """One request's journey through its plan; `attempts` is what the ledger and headers report."""

    __slots__ = ("settings", "deadline", "plan", "attempts", "hedged", "_hedge", "_allowed", "_spill",
                 "_excluded_providers", "_min_context", "_failures", "_held", "_losers")

    def __init__(self, settings: RetrySettings, deadline: float, plan: "RoutePlan | None" = None) -> None:
        self.settings = settings
        self.deadline = deadline
        self.plan = plan
        self.hedged: RoutedDeployment | None = None  # the partner started by a hedge, if one was
        if plan is not None:
            self.attempts: list[AttemptRecord] = list(plan.overhead) if plan.overhead else []
            self._hedge, self._allowed, self._spill = plan.hedge, plan.residency, plan.spill
        else:
            self.attempts, self._hedge, self._allowed, self._spill = [], None, None, None
        # made on first use: the plain answered request never needs them
        self._excluded_providers: frozenset[str] | set[str] = _NONE
        self._min_context = 0
        self._failures: list[Failure] = []
        self._held: list[RoutedDeployment] = []    # answered; in flight until release()
        self._losers: frozenset[RoutedDeployment] | set[RoutedDeployment] = _NONE

    @property
    def tries(self) -> int:
        tries = 0
        for attempt in self.attempts:
            if attempt.outcome not in NOT_TRIES:
                tries += 1
        return tries

    async def run(self, model: str, plan: list[RoutedDeployment],
                  attempt: Callable[[RoutedDeployment], Awaitable[T]]) -> tuple[RoutedDeployment, T]:
        pending = list(plan)
        deferred: set[RoutedDeployment] | frozenset[RoutedDeployment] = set() if self._spill is not None else _NONE
        while pending:
            dep = pending.pop(0)
            if not self._take_slot(dep, pending, deferred):
                assert isinstance(deferred, set)  # _take_slot refuses only with spillover on, when it is a set
                deferred.add(dep)  # filled up since the plan was made (requests plan concurrently): try it last
                pending.append(dep)
                continue
            if not self._eligible(dep):
                release(dep)
                continue
            # dep's slot is taken; from here to the attempt's start there is no await
            if self._hedge is not None and pending:
                found = await self._race(dep, pending, attempt)
            else:
                outcome = await self._try_deployment(dep, attempt, pending)
                found = (dep, outcome) if outcome is not None else None
            if found is not None:
                return found
            if self.tries >= self.settings.max_attempts or self._past_deadline():
                break
        raise self._final_error(model)

    def _take_slot(self, dep: RoutedDeployment, spill_to: list[RoutedDeployment] | None,
                   deferred: set[RoutedDeployment] | frozenset[RoutedDeployment] = _NONE) -> bool:
        """Count an attempt on `dep` now; False (nothing taken) when it is full and one of `spill_to` has
        room, or it is full and `spill_to` is None (optional work: a hedge partner, a retry while another
        racer carries on). A deployment already deferred once is the last resort: it goes over its cap."""
        spill = self._spill
        if spill is not None and dep not in deferred:
            if try_acquire(dep, spill) is None:
                return True
            if spill_to is None or has_room(spill_to, spill):
                return False
        dep.in_flight += 1  # spillover.acquire, written out: once per attempt
        return True

    def release(self) -> None:
        """The request is finished: the deployment that answered no longer counts as in flight."""
        for dep in self._held:
            dep.in_flight -= 1  # spillover.release, written out: once per request
        self._held.clear()

    def extra_cost(self) -> tuple[Decimal, bool]:
        """What hedge losers and routing overhead cost on top of the answer, and whether all of it is priced."""
        total, priced = _ZERO, True
        for record in self.attempts:
            if record.outcome in EXTRA_COST_OUTCOMES:
                if record.cost_usd is None:
                    priced = False
                else:
                    total += record.cost_usd
        return total, priced

    def _eligible(self, dep: RoutedDeployment) -> bool:
        reason = ""
        if self._allowed is not None and dep.jurisdiction not in self._allowed:
            reason = f"jurisdiction {dep.jurisdiction} is outside the residency policy"
        elif dep.provider in self._excluded_providers:
            reason = f"provider {dep.provider} ruled out earlier in this request"
        elif dep.context_window <= self._min_context:
            reason = f"context window {dep.context_window} is not larger than one that was too small"
        elif dep.keys is not None and not dep.keys.usable():
            reason = dep.keys.held_off()
        elif not dep.breaker.allow():
            reason = "circuit breaker open"
        if reason:
            self.attempts.append(AttemptRecord(dep, "skipped", reason))
        return not reason

    async def _race(self, first: RoutedDeployment, pending: list[RoutedDeployment],
                    attempt: Callable[[RoutedDeployment], Awaitable[T]]) -> tuple[RoutedDeployment, T] | None:
        """Try `first` (its slot already taken); if it has not answered within the hedge delay, race it
        against the next candidate with room."""
        hedge = self._hedge
        assert hedge is not None
        tasks = {asyncio.create_task(self._try_deployment(first, attempt, None)): first}
        order = [first]
        try:
            done, _ = await asyncio.wait(tasks, timeout=hedge.delay_s(first))
            if not done and self.tries < self.settings.max_attempts and hedge.budget.has_credit():
                partner = self._hedge_partner(pending)  # its slot taken: no await until its task exists
                if partner is not None:
                    hedge.budget.spend()  # has the credit: checked above, with no await since
                    tasks[asyncio.create_task(self._try_deployment(partner, attempt, None))] = partner
                    order.append(partner)
                    self.hedged = partner
            while tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: order.index(tasks[t])):
                    dep = tasks.pop(task)
                    result = task.result()  # a client error raises here; `finally` cancels the other
                    if result is not None:
                        await self._cancel_losers(tasks)
                        return dep, result
            return None
        finally:
            for task, dep in tasks.items():
                _cancel(task, dep)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def _hedge_partner(self, pending: list[RoutedDeployment]) -> RoutedDeployment | None:
        """The next eligible candidate with room, taken out of `pending` with its slot taken. A hedge is
        optional extra work, never worth going over a cap: full candidates stay in the plan as fallbacks."""
        index = 0
        while index < len(pending):
            dep = pending[index]
            if not self._take_slot(dep, None):
                index += 1
                continue
            del pending[index]
            if self._eligible(dep):
                return dep
            release(dep)
        return None

    async def _cancel_losers(self, tasks: dict[asyncio.Task, RoutedDeployment]) -> None:
        """Cancel the slower racer; one that answered in the same instant is closed and recorded as the loser."""
        losers = self._losers
        if not isinstance(losers, set):  # still the shared empty frozenset
            losers = self._losers = set()
        for task, dep in tasks.items():
            losers.add(dep)
            _cancel(task, dep)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for dep, result in zip(tasks.values(), results):
            if result is None or isinstance(result, BaseException):
                continue
            _discard(result)
            self._held.remove(dep)
            release(dep)
            answered = next(a for a in reversed(self.attempts) if a.deployment is dep and a.outcome == "ok")
            self.attempts[self.attempts.index(answered)] = self._loser(dep, answered.ended_at - answered.latency_ms / 1000)
        tasks.clear()

    def _loser(self, dep: RoutedDeployment, started: float) -> AttemptRecord:
        """A hedge loser, priced at its estimated prompt: the upstream has likely read it before the cancel."""
        now = asyncio.get_running_loop().time()
        prompt_tokens, cost = self._hedge.estimate_loser(dep) if self._hedge is not None else (0, None)
        return AttemptRecord(dep, "cancelled", "lost the hedge race", None, (now - started) * 1000, "hedge_loser",
                             cost, prompt_tokens, 0, now)

    async def _try_deployment(self, dep: RoutedDeployment, attempt: Callable[[RoutedDeployment], Awaitable[T]],
                              spill_to: list[RoutedDeployment] | None) -> T | None:
        """Attempt `dep`, whose slot the caller took, again while its failures allow a retry and it has
        room (or, outside a race, nothing in `spill_to` has: see _take_slot). Gives the slot back on
        failure and cancellation; an answered attempt keeps it until release()."""
        loop = asyncio.get_running_loop()
        retries = 0
        while True:
            started = loop.time()
            try:  # each attempt bounds itself by min(its own timeouts, self.deadline): one timer, not two
                result = await attempt(dep)
            except UpstreamFailure as exc:
                failure, key, key_refused = exc.failure, exc.key, exc.key_refused
            except BaseException as exc:
                release(dep)
                dep.breaker.abandon()
                if isinstance(exc, asyncio.CancelledError) and dep in self._losers:
                    self.attempts.append(self._loser(dep, started))
                raise
            else:
                self._held.append(dep)
                now = loop.time()
                dep.breaker.record(True)
                answered = AttemptRecord(dep, "ok", "", None, (now - started) * 1000, "", None, 0, 0, now)
                if dep.keys is not None:
                    key = getattr(result, "key", None)
                    answered.key = key.ledger_label if key is not None else ""
                self.attempts.append(answered)
                return result
            release(dep)
            now = loop.time()
            record = AttemptRecord(dep, "failover", _redact(failure.message, dep), failure.status,
                                   (now - started) * 1000, failure.kind.value, ended_at=now, key=_key_label(key))
            self.attempts.append(record)
            self._failures.append(failure)
            if key_refused and self._another_key(dep):
                dep.breaker.abandon()  # the key's fault, not the deployment's: a probe it held is taken again
                record.outcome = "retry"
                if not dep.breaker.allow() or not self._take_slot(dep, spill_to):
                    record.outcome = "failover"
                    return None
                continue  # at once, with the next key; not one of the deployment's retries
            delay = self._after_failure(dep, failure, retries)
            if delay is None:
                return None
            record.outcome = "retry"
            await asyncio.sleep(delay)
            if not self._take_slot(dep, spill_to):  # filled up during the backoff: move on instead
                record.outcome = "failover"
                return None
            retries += 1

    def _another_key(self, dep: RoutedDeployment) -> bool:
        """Whether the provider refused a key but has another one to try, within the attempt budget."""
        keys = dep.keys
        return (keys is not None and keys.usable() and self.tries < self.settings.max_attempts
                and not self._past_deadline())

    def _after_failure(self, dep: RoutedDeployment, failure: Failure, retries: int) -> float | None:
        """Update breakers and exclusions; return a delay to retry the same deployment, or None to move on."""
        kind = failure.kind
        dep.breaker.record(not kind.counts_against_health)
        if kind is FailureKind.CLIENT_ERROR:
            self.attempts[-1].outcome = "fatal"
            raise _client_error(failure, dep)
        if kind in (FailureKind.OUT_OF_FUNDS, FailureKind.CONTENT_FILTER):
            self._excluded_providers = {*self._excluded_providers, dep.provider}
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
                           f"{a.status or ''} {a.error}".replace("  ", " ") for a in self.attempts
                           if a.outcome != "routing_overhead")
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


def _cancel(task: asyncio.Task, dep: RoutedDeployment) -> None:
    """Cancel a racer. One whose coroutine has not started yet never runs its own handlers (cancelling it
    throws into it before its first line), so its slot, taken before the task was created, is given back
    here; a task already cancelled or done has given its slot back, or will."""
    if task.done() or task.cancelling():
        return
    # every racer's task is made from a coroutine (typeshed also allows a generator-based one)
    if inspect.getcoroutinestate(cast(Coroutine[Any, Any, Any], task.get_coro())) == inspect.CORO_CREATED:
        release(dep)
    task.cancel()


def _discard(result: object) -> None:
    """Close a stream that answered but lost the race, so its connection is not left open."""
    response = getattr(result, "response", None)
    if response is not None:
        response.close()


def _client_error(failure: Failure, dep: RoutedDeployment) -> GatewayError:
    """The upstream rejected the request itself: hand its status and message back, in OpenAI's shape."""
    return GatewayError(failure.status or 400, f"{_redact(failure.message, dep)} (from {dep.name})",
                        "invalid_request_error", "upstream_rejected_request")


def _key_label(key: object) -> str:
    """The ledger's name for the key an attempt used ("" for a provider with one key)."""
    return getattr(key, "ledger_label", "") if key is not None else ""


def _redact(text: str, dep: RoutedDeployment) -> str:
    """Upstream messages sometimes quote the key they were sent (in any auth header); never pass it on."""
    for secret in dep.secrets():
        if secret in text:
            text = text.replace(secret, "***")
    return text[:500]


"""Shadow traffic: a background copy of a served request to another deployment, for comparison.

The copy starts only after the client's request has finished (the handler hands it over from its
ledger step), runs as its own task with its own ledger row (`shadow = 1`, id `<request id>:shadow`,
the same key and route group), and its answer goes nowhere: the client's bytes and latency cannot be
touched by it. Copies are bounded (`max_in_flight`): when the shadow deployment is slow, extra copies
are dropped rather than queued, so shadowing can never build up load. A copy also counts in its target's
in-flight count, and is dropped when the group's spillover says the target is full: the copy's slot is
taken in `launch`, with the check, and given back when its task ends (a done callback runs however the
task ends, even if it is cancelled before it starts). The residency policy was already applied when the
plan chose the copy's target.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

import orjson

from tollway.catalog.cost import try_cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.core.money import decimal_text
from tollway.core.request import ClientRequest, prompt_text
from tollway.core.usage import Usage
from tollway.ledger.schema import LedgerRow
from tollway.providers.estimates import answer_text_tally, estimated_usage
from tollway.routing.attempts import AttemptRecord
from tollway.routing.spillover import Saturation, release, try_acquire
from tollway.routing.table import RoutedDeployment
from tollway.upstream import calls
from tollway.upstream.calls import UpstreamFailure
from tollway.upstream.http_client import HttpClient
from tollway.upstream.relay import StreamRelay

log = logging.getLogger("tollway.routing.shadow")
STOP_GRACE_S = 5.0


@dataclass(slots=True)
class ShadowCopy:
    target: RoutedDeployment
    creq: ClientRequest
    endpoint: str
    max_in_flight: int = 32  # the group's bound on copies running at once
    saturated: Saturation | None = None  # the group's spillover check, if it has one


class _Sink:
    """Where a shadow stream's bytes go: counted, never sent anywhere."""

    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, data: bytes) -> None:
        self.bytes += len(data)


class ShadowMirror:
    def __init__(self, append_row: Callable[[LedgerRow], None], pricer: DeploymentPricer | None) -> None:
        self._append_row = append_row
        self._pricer = pricer
        self._tasks: set[asyncio.Task] = set()
        self.dropped = 0

    def launch(self, client: HttpClient, copy: ShadowCopy, primary: LedgerRow) -> bool:
        """Start the copy in the background; False when it is dropped (too many running, its target full,
        breaker open)."""
        target = copy.target
        if len(self._tasks) >= copy.max_in_flight or try_acquire(target, copy.saturated) is not None:
            self.dropped += 1
            return False
        if not target.breaker.allow():
            release(target)
            self.dropped += 1
            return False
        task = asyncio.create_task(self._mirror(client, copy, primary), name=f"shadow-{primary.id}")
        self._tasks.add(task)

        def done(finished: asyncio.Task) -> None:
            self._tasks.discard(finished)
            release(target)

        task.add_done_callback(done)
        return True

    async def stop(self) -> None:
        """Let running copies finish for a few seconds, then cancel them (each still writes its row)."""
        if not self._tasks:
            return
        _, still = await asyncio.wait(list(self._tasks), timeout=STOP_GRACE_S)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)

    async def _mirror(self, client: HttpClient, copy: ShadowCopy, primary: LedgerRow) -> None:
        await asyncio.sleep(0)  # let the handler hand the client's answer to the transport first
        run = _ShadowRun(copy, datetime.now(timezone.utc))
        dep = copy.target
        try:
            await run.call(client)
        except asyncio.CancelledError:
            run.status, run.http_status, run.error = "cancelled", 499, "shadow copy cancelled at shutdown"
            dep.breaker.abandon()
        except Exception as exc:  # a shadow must never take the gateway down; its row says what happened
            log.exception("shadow copy to %s failed", dep.name)
            run.status, run.http_status, run.error = "error", 500, f"{type(exc).__name__}: {exc}"[:300]
        self._append_row(run.row(primary, self._pricer))


class _ShadowRun:
    """One shadow call and what it measured."""

    def __init__(self, copy: ShadowCopy, arrived: datetime) -> None:
        self.copy = copy
        self.arrived = arrived
        self.started = asyncio.get_running_loop().time()
        self.status, self.http_status, self.error, self.kind = "ok", 200, "", ""
        self.usage: Usage | None = None
        self.ttft_s: float | None = None

    async def call(self, client: HttpClient) -> None:
        copy, dep = self.copy, self.copy.target
        payload = _payload(copy)
        loop = asyncio.get_running_loop()
        deadline = self.started + max(dep.first_byte_s, dep.response_s)  # each call also keeps its own timeouts
        try:
            if copy.creq.stream:
                opened = await calls.open_stream(client, dep, copy.endpoint, payload, deadline)
                self.ttft_s = opened.first_event_at - self.started
                result = await StreamRelay(dep.dialect, True, dep.between_chunks_s).run(opened, _Sink())
                self.usage = result.usage or result.estimated_usage(prompt_text(copy.creq))
                if result.error:
                    self.status, self.error = "stream_error", result.error
            else:
                reply = await calls.call(client, dep, copy.endpoint, payload, deadline)
                self.usage = _reply_usage(dep, reply.body, copy.creq)
        except UpstreamFailure as exc:
            failure = exc.failure
            dep.breaker.record(not failure.kind.counts_against_health)
            self.status, self.http_status = "error", failure.status or 502
            self.error, self.kind = failure.message[:300], failure.kind.value
            return
        dep.breaker.record(True)
        self._learn(loop.time())

    def _learn(self, now: float) -> None:
        """The shadow deployment's speed is as real as any: feed its statistics."""
        stats, usage = self.copy.target.stats, self.usage
        tokens = usage.completion_tokens if usage is not None else 0
        if self.ttft_s is None:
            stats.observe_reply(now - self.started, tokens)
            return
        stats.observe_ttft(self.ttft_s)
        if tokens > 1 and self.status == "ok":
            stats.observe_tpot((now - self.started - self.ttft_s) / (tokens - 1))

    def row(self, primary: LedgerRow, pricer: DeploymentPricer | None) -> LedgerRow:
        dep = self.copy.target
        latency_ms = (asyncio.get_running_loop().time() - self.started) * 1000
        usage = self.usage or Usage(source="")
        price = pricer.price(dep, self.arrived, usage.prompt_tokens) if pricer is not None else None
        cost = try_cost_usd(usage, price) if self.usage is not None else Decimal(0)
        attempt = AttemptRecord(dep, "shadow", self.error, None if self.status == "ok" else self.http_status,
                                latency_ms, self.kind)
        return LedgerRow(
            id=f"{primary.id}:shadow", ts=self.arrived.isoformat(), endpoint=self.copy.endpoint,
            requested_model=primary.requested_model, status=self.status, http_status=self.http_status,
            key_id=primary.key_id, route_group=primary.route_group, deployment=dep.name, provider=dep.provider,
            upstream_model=dep.upstream_model, jurisdiction=dep.jurisdiction, attempts=[attempt.to_ledger()],
            prompt_tokens=usage.prompt_tokens, cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens, completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens, usage_source=usage.source,
            cost_usd=decimal_text(cost if cost is not None else Decimal(0)),
            ttft_ms=self.ttft_s * 1000 if self.ttft_s is not None else None, latency_ms=latency_ms,
            error=self.error, streamed=int(self.copy.creq.stream), shadow=1, priced=int(cost is not None),
        )


def _payload(copy: ShadowCopy) -> bytes:
    body = {**copy.creq.body, "model": copy.target.upstream_model}
    if copy.creq.stream:
        body["stream_options"] = {**(copy.creq.body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(body)


def _reply_usage(dep: RoutedDeployment, body: bytes, creq: ClientRequest) -> Usage:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    usage = dep.dialect.usage_from_body(parsed) if isinstance(parsed, dict) else None
    if usage is None:
        usage = estimated_usage(prompt_text(creq), answer_text_tally(parsed))
    return usage

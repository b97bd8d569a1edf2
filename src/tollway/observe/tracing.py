"""Optional OpenTelemetry traces: one span per request, one child span per upstream attempt.

Tracing is off unless `observe.tracing.otlp_endpoint` is set, and OpenTelemetry is not a dependency:
with the endpoint set but `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http` missing, the
gateway starts and says what to install. Spans are built from the finished ledger row in the observer's
background drain, with the row's own times, so tracing adds nothing to the request path; the SDK's batch
processor exports from its own thread. Attempts are laid out one after another from the request start
using their recorded durations (hedged attempts overlap in reality; their spans say so in an attribute).
"""

from __future__ import annotations

import logging
from datetime import datetime

from tollway.ledger.schema import LedgerRow
from tollway.observe.settings import TracingSettings

log = logging.getLogger("tollway.observe")
_NS = 1_000_000


class RequestTracer:
    def __init__(self, provider, tracer) -> None:
        self._provider = provider
        self._tracer = tracer

    @classmethod
    def create(cls, settings: TracingSettings) -> RequestTracer | None:
        if not settings.otlp_endpoint:
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            log.warning("observe.tracing.otlp_endpoint is set but OpenTelemetry is not installed: "
                        "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http; tracing is off")
            return None
        provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint),
                                                       schedule_delay_millis=500))
        return cls(provider, provider.get_tracer("tollway.gateway"))

    def export(self, row: LedgerRow) -> None:
        from opentelemetry.trace import Status, StatusCode, set_span_in_context

        start = int(datetime.fromisoformat(row.ts).timestamp() * 1e9)
        end = start + int((row.latency_ms or 0) * _NS)
        span = self._tracer.start_span(f"{row.endpoint} {row.requested_model}", start_time=start,
                                       attributes=_request_attributes(row))
        if row.status != "ok":
            span.set_status(Status(StatusCode.ERROR, row.error[:200]))
        context = set_span_in_context(span)
        offset = start
        for number, attempt in enumerate(row.attempts, 1):
            took = int(float(attempt.get("latency_ms") or 0) * _NS)
            child = self._tracer.start_span(f"attempt {attempt.get('deployment', '')}", context=context,
                                            start_time=offset, attributes=_attempt_attributes(attempt, number))
            if attempt.get("outcome") not in ("ok", "skipped"):
                child.set_status(Status(StatusCode.ERROR, str(attempt.get("error", ""))[:200]))
            child.end(end_time=offset + took)
            offset += took
        span.end(end_time=max(end, offset))

    def shutdown(self) -> None:
        self._provider.shutdown()


def _request_attributes(row: LedgerRow) -> dict[str, object]:
    return {
        "tollway.request_id": row.id, "tollway.key_id": row.key_id, "tollway.route_group": row.route_group,
        "tollway.deployment": row.deployment, "tollway.provider": row.provider, "tollway.status": row.status,
        "http.response.status_code": row.http_status, "gen_ai.request.model": row.requested_model,
        "gen_ai.response.model": row.upstream_model, "gen_ai.usage.input_tokens": row.prompt_tokens,
        "gen_ai.usage.output_tokens": row.completion_tokens, "tollway.cost_usd": row.cost_usd,
        "tollway.ttft_ms": row.ttft_ms if row.ttft_ms is not None else -1.0,
    }


def _attempt_attributes(attempt: dict, number: int) -> dict[str, object]:
    return {
        "tollway.attempt": number, "tollway.deployment": str(attempt.get("deployment", "")),
        "tollway.provider": str(attempt.get("provider", "")), "tollway.outcome": str(attempt.get("outcome", "")),
        "tollway.failure_kind": str(attempt.get("kind", "")), "http.response.status_code": attempt.get("status") or 0,
        "tollway.hedge": bool(attempt.get("hedge")),
    }

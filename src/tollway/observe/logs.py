"""Structured logs: one JSON line per finished request, JSON log lines on request, and no secret, ever.

A request line carries the request id and everything the ledger row says about routing, tokens, cost
and timing, but never the prompt or the answer: the row does not hold them, and the observer never sees
them. Every log record of the process passes a redaction filter that replaces each configured secret
(provider keys, client keys, the admin key, the webhook URL) with `***`, so even a library that logs a
URL or a header cannot leak one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from tollway.ledger.schema import LedgerRow
from tollway.observe.settings import LogSettings

request_log = logging.getLogger("tollway.requests")
route_log = logging.getLogger("tollway.route")  # debug: each request's routing and attempts, whatever logs.requests says
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_REDACTED = "***"
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words


def request_event(row: LedgerRow) -> dict[str, object]:
    """The fields of a request's log line (no prompt text, no key material: key_id is an id)."""
    return {
        "event": "request", "request_id": row.id, "ts": row.ts, "key_id": row.key_id, "endpoint": row.endpoint,
        "model": row.requested_model, "route_group": row.route_group, "deployment": row.deployment,
        "provider": row.provider, "upstream_model": row.upstream_model, "status": row.status,
        "http_status": row.http_status, "attempts": len(row.attempts), "prompt_tokens": row.prompt_tokens,
        "cached_tokens": row.cached_tokens, "completion_tokens": row.completion_tokens,
        "reasoning_tokens": row.reasoning_tokens, "usage_source": row.usage_source, "cost_usd": row.cost_usd,
        "priced": bool(row.priced), "ttft_ms": _ms(row.ttft_ms), "latency_ms": _ms(row.latency_ms),
        "streamed": bool(row.streamed), "error": row.error,
    }


def log_request(row: LedgerRow) -> None:
    if request_log.isEnabledFor(logging.INFO):
        event = request_event(row)
        request_log.info("request %s", orjson.dumps(event).decode(), extra={"event": event})
    if route_log.isEnabledFor(logging.DEBUG):
        log_routing(row)


def log_routing(row: LedgerRow) -> None:
    """At debug level, how a request was routed and each upstream attempt it made: what an operator needs
    to see why a request went where it went, from the row alone (no prompt, no key material)."""
    decision = {"event": "route", "request_id": row.id, "model": row.requested_model, "route_group": row.route_group,
                "served_by": row.deployment or None, "attempts": len(row.attempts),
                "features": orjson.loads(row.request_features or "{}")}
    route_log.debug("route %s", orjson.dumps(decision).decode(), extra={"event": decision})
    for number, attempt in enumerate(row.attempts, 1):
        event = {"event": "upstream_attempt", "request_id": row.id, "attempt": number, **attempt}
        route_log.debug("upstream attempt %s", orjson.dumps(event, default=str).decode(), extra={"event": event})


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus a record's structured `event`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
        }
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            line.update(event)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class SecretRedactor(logging.Filter):
    """Replaces every known secret in a record's message and structured event before it is written."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            text = orjson.dumps(event, default=str).decode()
            if self._clean(text) != text:
                record.event = orjson.loads(self._clean(text))
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self._clean(text) != text:
                record.msg = f"{record.getMessage()}\n{self._clean(text)}"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text


def configure(level: str, settings: LogSettings) -> None:
    """Set up the root logger once the config is read and before anything logs, so that with
    `format: json` the very first line is JSON too (a log shipper parsing lines would drop others)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def install(settings: LogSettings, secrets: Iterable[str]) -> SecretRedactor:
    """Redact on every handler of the root logger (and JSON-format them if asked). Returns the filter."""
    redactor = SecretRedactor(secrets)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        handler.addFilter(redactor)
        if settings.format == "json":
            handler.setFormatter(JsonFormatter())
    if not settings.requests:
        request_log.setLevel(logging.WARNING)
    return redactor


def uninstall(redactor: SecretRedactor) -> None:
    for handler in logging.getLogger().handlers:
        handler.removeFilter(redactor)

"""Log lines: JSON when asked, and every configured secret redacted from any record."""

import logging

import orjson

from tests.observe.support import row
from tollway.observe.logs import JsonFormatter, SecretRedactor, request_event


def record(message: str, *args, event: dict | None = None) -> logging.LogRecord:
    rec = logging.LogRecord("tollway.test", logging.WARNING, __file__, 1, message, args, None)
    if event is not None:
        rec.event = event
    return rec


def test_secrets_are_redacted_from_messages_arguments_and_events():
    redactor = SecretRedactor(["sk-live-abcdef123", "https://hooks.example/T000/B000/XXXX", "short"])
    rec = record("upstream said %s", "bad key sk-live-abcdef123")
    redactor.filter(rec)
    assert rec.getMessage() == "upstream said bad key ***"
    rec = record("posting", event={"url": "https://hooks.example/T000/B000/XXXX", "n": 1})
    redactor.filter(rec)
    assert rec.event == {"url": "***", "n": 1}
    rec = record("a short word stays")
    redactor.filter(rec)
    assert rec.getMessage() == "a short word stays", "values under 6 characters are not treated as secrets"


def test_json_formatter_merges_the_event():
    line = orjson.loads(JsonFormatter().format(record("request %s", "{}", event={"event": "request", "request_id": "r1"})))
    assert (line["level"], line["logger"], line["event"], line["request_id"]) == ("warning", "tollway.test", "request", "r1")
    plain = orjson.loads(JsonFormatter().format(record("hello %s", "world")))
    assert plain["message"] == "hello world"


def test_request_event_has_accounting_but_no_content():
    event = request_event(row("r9", "2026-11-23T10:00:00+00:00", cost="0.5", prompt=10, completion=3, latency=12.34567))
    assert event["request_id"] == "r9" and event["cost_usd"] == "0.5" and event["latency_ms"] == 12.346
    assert not {"messages", "prompt", "content", "body"} & set(event)

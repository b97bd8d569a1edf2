"""The one escaping rule every ledger store gets (pure functions)."""

from __future__ import annotations

import orjson
import pytest

from tollway.ledger.health import LedgerHealth
from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow
from tollway.ledger.store_text import row_json, storable_record, store_json, store_json_text, store_text


def test_clean_text_is_returned_as_it_is() -> None:
    for text in ("req-1", "", "模型 qwen3.5-plus", "emoji 🙂 and é"):
        assert store_text(text) is text


@pytest.mark.parametrize(("text", "stored"), [
    ("ch\x00at", "ch\\u0000at"),
    ("id\udcff\udcfe", "id\\udcff\\udcfe"),      # undecodable header bytes, as surrogateescape keeps them
    ("模型\x00\ud800", "模型\\u0000\\ud800"),
])
def test_nul_and_lone_surrogates_become_their_json_escape(text: str, stored: str) -> None:
    assert store_text(text) == stored
    stored.encode("utf-8")  # any UTF-8 store takes it


def test_json_holds_no_nul_escape_and_no_lone_surrogate() -> None:
    value = [{"error": "model 'ch\x00at'", "id\udcff": "x\udcfe", "n": 3}]
    text = store_json(value)
    assert "\\u0000" not in text.replace("\\\\u0000", "")  # only the escaped escape, never a JSON NUL
    assert orjson.loads(text) == [{"error": "model 'ch\\u0000at'", "id\\udcff": "x\\udcfe", "n": 3}]
    assert store_json([{"a": "ok"}]) == '[{"a":"ok"}]'


def test_json_text_is_reencoded_only_when_it_carries_what_a_store_refuses() -> None:
    clean = '{"needs":["tools"],"max_tokens":5}'
    assert store_json_text(clean) is clean
    assert orjson.loads(store_json_text('{"a":"\\u0000","b":"\\udcff"}')) == {"a": "\\u0000", "b": "\\udcff"}
    with pytest.raises(ValueError):
        store_json_text('{"a": "\\u0000" broken')


def test_a_row_is_stored_and_spooled_with_the_same_text() -> None:
    row = LedgerRow(id="id\udcff", ts="2026-12-06T00:00:00+00:00", endpoint="chat", requested_model="ch\x00at",
                    status="client_error", http_status=404, error="unknown model 'ch\x00at'",
                    attempts=[{"error": "\udcfe"}])
    record = dict(zip(LEDGER_COLUMNS, storable_record(row)))
    spooled = orjson.loads(row_json(row))
    for column in ("id", "requested_model", "error"):
        assert record[column] == spooled[column]
    assert orjson.loads(record["attempts"]) == spooled["attempts"] == [{"error": "\\udcfe"}]
    assert orjson.loads(row_json(object()))["repr"].startswith("<object")  # never fails, whatever it is given


def test_health_reports_rows_waiting_longer_than_the_stall_limit() -> None:
    health = LedgerHealth("a test store", stall_after_s=0.0)
    assert health.problem(waiting=0) is None
    assert "3 ledger rows not written" in health.problem(waiting=3)
    health.writer_down = "RuntimeError"
    assert health.problem(waiting=0) == "ledger writer restarting after RuntimeError"


def test_clean_rows_are_stored_unchanged_on_either_path() -> None:
    """Backslashes and quotes send a row down the careful path; clean non-ASCII text takes the fast one.
    Either way clean text is stored as it is."""
    for error, attempt_error in (('upstream said "no" \\ 模型', 'quote " and \\'), ("模型过载", "plain")):
        row = LedgerRow(id="r1", ts="2026-12-06T00:00:00+00:00", endpoint="chat", requested_model="chat",
                        status="error", http_status=502, error=error, attempts=[{"error": attempt_error}],
                        request_features='{"needs":["tools"],"max_tokens":5}')
        record = dict(zip(LEDGER_COLUMNS, storable_record(row)))
        assert record["error"] == error
        assert orjson.loads(record["attempts"]) == [{"error": attempt_error}]
        assert record["request_features"] == row.request_features

"""Text every ledger store can hold: the one escaping rule shared by SQLite, PostgreSQL, the spool and the
quarantine.

A row carries text the client chose (request id, model name) and text upstreams sent (error messages).
Two kinds of character cannot be stored everywhere: NUL (PostgreSQL's text and jsonb refuse it) and lone
surrogates, which Python uses for undecodable bytes and which no UTF-8 encoder accepts (SQLite, psycopg
and orjson all raise). Each such character is written as the six characters `\\uXXXX` of its code point,
as JSON would escape it: `ch\\u0000at`, `id\\udcff`. Every store gets the same text, so a row reads
the same in SQLite and PostgreSQL and a spooled row is stored as it would have been directly.

The check is the costly part (it runs for every row the writer stores), so `storable_record` tells a
clean row with a few single-pass C scans over all its text at once; only a row that fails them has its
values examined one by one (docs/performance.md has the micro-benchmark, benchmarks/ledger_rows.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from operator import attrgetter, itemgetter
from typing import Any

import orjson

from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_JSON_NUL = b"\\u0000"


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def store_text(text: str) -> str:
    """`text` with NUL and lone surrogates written as `\\uXXXX`; `text` itself when it has none."""
    if text.isascii():
        return text if "\x00" not in text else text.replace("\x00", "\\u0000")
    if "\x00" not in text:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
    return _UNSTORABLE.sub(_escape, text)


def escape_value(value: Any) -> Any:
    """A JSON-shaped value with every string (keys too) passed through `store_text`."""
    if isinstance(value, str):
        return store_text(value)
    if isinstance(value, dict):
        return {store_text(str(k)): escape_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_value(v) for v in value]
    return value


def store_json(value: Any, default: Any = None) -> str:
    """`value` as JSON text any store holds (jsonb included). Raises TypeError for values JSON cannot
    express, unless `default` turns them into something it can."""
    try:
        dumped = orjson.dumps(value, default=default)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer beyond 64 bits, or a value JSON cannot express
        return _slow_json(escape_value(value), default)
    if _JSON_NUL in dumped:
        return _slow_json(escape_value(value), default)
    return dumped.decode()


def _slow_json(value: Any, default: Any) -> str:
    try:
        return orjson.dumps(value, default=default).decode()
    except orjson.JSONEncodeError:  # the stdlib encoder has no 64-bit limit on integers
        return json.dumps(value, ensure_ascii=False, default=default, separators=(",", ":"))


def store_json_text(text: str) -> str:
    """JSON text re-encoded so any store holds it: escapes (`\\u...`) of NUL or lone surrogates become
    escaped text. Raises ValueError when `text` is not JSON."""
    if "\\u" not in text and store_text(text) is text:
        return text
    return store_json(json.loads(text))  # the stdlib parser accepts lone surrogate escapes; orjson does not


def row_json(row: Any) -> str:
    """Any ledger row as JSON text a store holds, whatever it carries: the spool's and the quarantine's
    form, which must never fail (values JSON cannot express are kept as their text)."""
    try:
        data = dataclasses.asdict(row)
    except TypeError:  # not a dataclass instance: keep what can be seen of it
        data = {"repr": repr(row)}
    return store_json(data, default=str)


_TEXT_COLUMNS = tuple(name for name in LEDGER_COLUMNS
                      if LedgerRow.__annotations__.get(name) == "str" and name != "request_features")
_TEXT_INDEXES = tuple(LEDGER_COLUMNS.index(name) for name in _TEXT_COLUMNS)
_ATTEMPTS = LEDGER_COLUMNS.index("attempts")
_FEATURES = LEDGER_COLUMNS.index("request_features")
_row_values = attrgetter(*LEDGER_COLUMNS)
_checked_texts = itemgetter(*_TEXT_INDEXES, _FEATURES)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_record(row: LedgerRow) -> list[Any]:
    """The row's values in LEDGER_COLUMNS order as every store takes them: text escaped, `attempts` and
    `request_features` as JSON text. Raises (TypeError, ValueError) for a row no store should take.

    Fast path: one join of every text value (request_features included), single-character C scans (no
    NUL, no backslash: JSON escapes in request_features are rare, and a backslash in any other text is
    too) and, for non-ASCII text only, one UTF-8 encode; a substring search costs several times more, so
    the attempts' JSON is searched for an escaped NUL only when it holds a backslash. Anything else takes the careful path, which gives the
    same result for clean text."""
    record = list(_row_values(row))
    try:
        attempts = orjson.dumps(record[_ATTEMPTS])
    except orjson.JSONEncodeError:  # a lone surrogate (or worse): the careful path escapes it or raises
        attempts = _JSON_NUL
    joined = "".join(_checked_texts(record))
    if ("\x00" not in joined and "\\" not in joined and (joined.isascii() or _encodes(joined))
            and (b"\\" not in attempts or _JSON_NUL not in attempts)):
        record[_ATTEMPTS] = attempts.decode()
        return record
    for index in _TEXT_INDEXES:
        record[index] = store_text(record[index])
    record[_ATTEMPTS] = store_json(record[_ATTEMPTS])
    record[_FEATURES] = store_json_text(record[_FEATURES])
    return record

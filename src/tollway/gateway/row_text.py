"""Text the ledger row needs, made cheaply on every request: the request's features as JSON (few distinct
values occur, so each is encoded once) and the arrival time in ISO form (its date part made once a second).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_features_cache: dict[tuple, str] = {}
_second_cache: list = [-1, ""]


def features_json(needs: frozenset[str], max_tokens: int | None, residency: frozenset[str] | None) -> str:
    """The row's request_features JSON; few distinct values occur, so each is encoded once (bounded).
    No prompt estimate: the row's real prompt_tokens are better, and estimating scans the prompt."""
    key = (needs, max_tokens, residency)
    text = _features_cache.get(key)
    if text is None:
        if len(_features_cache) >= 4096:
            _features_cache.clear()
        text = _features_cache[key] = orjson.dumps({
            "needs": sorted(needs), "max_tokens": max_tokens,
            "residency": sorted(residency) if residency is not None else None}).decode()
    return text


def iso_utc(micros: int) -> str:
    """`datetime.isoformat()` of a UTC time in microseconds since the epoch, the date part made once a second."""
    second, fraction = divmod(micros, 1_000_000)
    if second != _second_cache[0]:
        _second_cache[0], _second_cache[1] = second, (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second_cache[1]}.{fraction:06d}+00:00" if fraction else f"{_second_cache[1]}+00:00"



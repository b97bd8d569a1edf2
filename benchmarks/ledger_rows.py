"""Micro-benchmark: the ledger writer's per-row preparation, before and with the store-text escaping.

The writer runs off the request path, but it shares the gateway's core, so what it spends per row is
still overhead. Compares the preparation the SQLite writer did (values + attempts as JSON) with
`storable_record` (the same, plus the escaping check) on a typical ASCII row, a row with non-ASCII text
and a row that needs escaping.

    .venv/bin/python benchmarks/ledger_rows.py
"""

from __future__ import annotations

import timeit
from operator import attrgetter

import orjson

from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow
from tollway.ledger.store_text import storable_record

_values = attrgetter(*LEDGER_COLUMNS)
_ATTEMPTS = LEDGER_COLUMNS.index("attempts")
ATTEMPT = {"deployment": "ds-flash", "provider": "deepseek", "jurisdiction": "cn", "outcome": "ok", "status": 200,
           "error": "", "latency_ms": 812.4, "cost_usd": "0.000231", "prompt_tokens": 412, "completion_tokens": 96}


def typical(**fields) -> LedgerRow:
    base = {"id": "req-6f1c2a9b3d4e", "ts": "2026-12-06T10:00:00.123456+00:00", "endpoint": "chat",
            "requested_model": "chat", "status": "ok", "http_status": 200, "key_id": "k_7f3a2c",
            "route_group": "chat", "deployment": "ds-flash", "provider": "deepseek", "upstream_model": "deepseek-chat",
            "jurisdiction": "cn", "attempts": [ATTEMPT], "prompt_tokens": 412, "completion_tokens": 96,
            "usage_source": "reported", "cost_usd": "0.000231", "ttft_ms": 120.5, "latency_ms": 812.4,
            "system_fingerprint": "fp_3a2b", "request_features": '{"needs":["tools"],"max_tokens":512}'}
    return LedgerRow(**{**base, **fields})


def before(row: LedgerRow) -> list:
    record = list(_values(row))
    record[_ATTEMPTS] = orjson.dumps(record[_ATTEMPTS]).decode()
    return record


def main() -> None:
    cases = {"ascii": typical(), "non-ascii": typical(error="上游错误：模型过载"),
             "escaped": typical(id="id\udcff\udcfe", requested_model="ch\x00at")}
    runs = [(name, label, prepare, row) for name, row in cases.items()
            for label, prepare in (("before", before), ("storable_record", storable_record))
            if not (label == "before" and name == "escaped")]  # the old preparation let those reach the store
    best: dict[tuple[str, str], float] = {}
    number = 20_000
    for _ in range(30):  # interleaved, best of many: the machine is shared, the minimum is the cost
        for name, label, prepare, row in runs:
            seconds = timeit.timeit(lambda: prepare(row), number=number) / number
            best[(name, label)] = min(best.get((name, label), seconds), seconds)
    for (name, label), seconds in best.items():
        print(f"{name:10} {label:16} {seconds * 1e6:6.2f} µs/row")


if __name__ == "__main__":
    main()

"""What keeping the roll-ups costs the PostgreSQL ledger writer: one batch statement with roll-ups (the
writer's) against the plain multi-row insert it replaced, on the same partitioned table.

The writer runs off the request path, but a slower write means a longer queue under load. Starts its own
PostgreSQL, writes `--batches` batches of `--batch` rows each way, and prints rows/s.

    .venv/bin/python benchmarks/readside/writer_batch.py --batches 50 --batch 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ledger_rows import typical  # noqa: E402

from tests.fixtures.postgres import PostgresHandle  # noqa: E402
from tollway.ledger.postgres import connect, migrate  # noqa: E402
from tollway.ledger.rollups import INSERT_WITH_ROLLUPS_SQL, columns_as_arrays  # noqa: E402
from tollway.ledger.schema import LEDGER_COLUMNS  # noqa: E402
from tollway.ledger.store_text import storable_record  # noqa: E402

PLAIN_SQL = (f"INSERT INTO requests ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join(['%s'] * len(LEDGER_COLUMNS))}) "
             "ON CONFLICT (id, ts) DO NOTHING")
COST = LEDGER_COLUMNS.index("cost_usd")


def batches(prefix: str, count: int, size: int) -> list[list[list]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for b in range(count):
        records = []
        for n in range(size):
            row = typical(id=f"{prefix}-{b}-{n}", ts=(start + timedelta(milliseconds=b * size + n)).isoformat(),
                          key_id=f"k{n % 20}")
            record = storable_record(row)
            record[COST] = Decimal(record[COST])
            records.append(record)
        out.append(records)
    return out


def rows_per_s(url: str, work: list[list[list]], with_rollups: bool) -> float:
    conn = connect(url, autocommit=False)
    try:
        started = time.perf_counter()
        for records in work:
            with conn.cursor() as cur:
                if with_rollups:
                    cur.execute(INSERT_WITH_ROLLUPS_SQL, columns_as_arrays(records))
                else:
                    cur.executemany(PLAIN_SQL, records)
            conn.commit()
        return sum(len(r) for r in work) / (time.perf_counter() - started)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    server = PostgresHandle().start()
    try:
        url = server.create_database()
        conn = connect(url)
        try:
            migrate(conn)
        finally:
            conn.close()
        for round_ in range(2):
            plain = rows_per_s(url, batches(f"plain{round_}", args.batches, args.batch), with_rollups=False)
            rolled = rows_per_s(url, batches(f"rolled{round_}", args.batches, args.batch), with_rollups=True)
            print(f"round {round_ + 1}: plain insert {plain:,.0f} rows/s; insert with roll-ups {rolled:,.0f} rows/s "
                  f"({rolled / plain:.2f}x)")
    finally:
        server.discard()


if __name__ == "__main__":
    main()

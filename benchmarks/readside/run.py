"""The PostgreSQL read side at scale: `tollway report` and the observer's start-up, roll-ups against raw rows.

Starts its own PostgreSQL (a throwaway data directory, as tests/fixtures/postgres.py does), fills
`--days` days of `--rows-per-day` ledger rows with generate_series (in SQL: no Python inserts), builds the
hourly roll-ups with the writer's own SQL, then times, in one run on one machine:

- `tollway report --json --since 7d` as a user runs it (a process; the roll-ups, plus raw rows only for
  the percentiles and the window's partial edge hours), against the same report built from the window's
  raw rows (what `report` did before roll-ups);
- the observer's start-up history (four weeks of hourly sums for baselines, the dashboard's 24 h of rows),
  from the roll-ups against a GROUP BY over the raw rows (what it did before).

    .venv/bin/python benchmarks/readside/run.py --days 30 --rows-per-day 1000000   # the issue's size
    .venv/bin/python benchmarks/readside/run.py --days 2 --rows-per-day 2000 --json  # a smoke run

It asserts that both paths give the same figures (percentiles to 1e-6), so a fast wrong answer fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from tests.fixtures.postgres import PostgresHandle  # noqa: E402
from tollway.ledger.postgres import connect, migrate  # noqa: E402
from tollway.ledger.rollups import REBUILD_ROLLUPS_SQL  # noqa: E402

# One synthetic day: g runs 1..n; every value a deterministic function of g, varied like real traffic
# (five deployments on three providers, 50 keys, 2% errors, 3% fallbacks, 1% shadow copies).
FILL_SQL = """
INSERT INTO requests (id, ts, key_id, endpoint, requested_model, route_group, deployment, provider, upstream_model,
                      jurisdiction, attempts, prompt_tokens, cached_tokens, completion_tokens, usage_source, cost_usd,
                      ttft_ms, latency_ms, status, http_status, streamed, shadow, priced)
SELECT 'req-' || %(day)s || '-' || g,
       %(start)s::timestamptz + (g * 86400.0 / %(n)s) * interval '1 second',
       'k' || (g %% 50), 'chat', CASE WHEN g %% 3 = 0 THEN 'code' ELSE 'chat' END,
       CASE WHEN g %% 3 = 0 THEN 'code' ELSE 'chat' END,
       d.name, d.provider, d.model, 'cn',
       CASE WHEN g %% 33 = 0
            THEN jsonb_build_array(jsonb_build_object('deployment', 'ds-flash', 'provider', 'deepseek', 'outcome', 'failover'),
                                   jsonb_build_object('deployment', d.name, 'provider', d.provider, 'outcome', 'ok'))
            ELSE jsonb_build_array(jsonb_build_object('deployment', d.name, 'provider', d.provider,
                                                      'outcome', CASE WHEN g %% 50 = 0 THEN 'fatal' ELSE 'ok' END)) END,
       200 + g %% 3000, g %% 200, 20 + g %% 700, 'reported',
       ((200 + g %% 3000) * 27 + (20 + g %% 700) * 110) / 1000000000.0,
       50 + g %% 400, 300 + g %% 5000,
       CASE WHEN g %% 50 = 0 THEN 'error' ELSE 'ok' END, CASE WHEN g %% 50 = 0 THEN 502 ELSE 200 END,
       1, CASE WHEN g %% 100 = 7 THEN 1 ELSE 0 END, 1
FROM generate_series(1, %(n)s) AS g
JOIN (VALUES (0, 'ds-flash', 'deepseek', 'deepseek-chat'), (1, 'ds-pro', 'deepseek', 'deepseek-reasoner'),
             (2, 'qwen-max', 'qwen', 'qwen-max'), (3, 'kimi', 'kimi', 'kimi-k2'), (4, 'glm', 'glm', 'glm-4.6'))
     AS d(k, name, provider, model) ON d.k = g %% 5
"""

RAW_REPORT = """
import sys, time
from datetime import datetime
from tollway.ledger.postgres_reader import PostgresLedgerReader
from tollway.observe.report_command import report_json
from tollway.observe.report_data import build_report
import orjson
url, since, until = sys.argv[1], datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
print(orjson.dumps(report_json(build_report(PostgresLedgerReader(url).rows(since, until), since=since, until=until))).decode())
"""

RAW_HOURLY = """
SELECT date_trunc('hour', ts, 'UTC'), key_id, route_group, deployment, sum(prompt_tokens + completion_tokens), sum(cost_usd)
FROM requests WHERE shadow = 0 AND ts >= %s AND ts < %s GROUP BY 1, 2, 3, 4
"""


def fill(url: str, days: int, per_day: int, today: datetime) -> float:
    started = time.perf_counter()
    conn = connect(url)
    try:
        for back in range(days, 0, -1):
            day = (today - timedelta(days=back)).date()
            conn.execute("SELECT tollway_ensure_partition(%s)", (day,))
            start = datetime.combine(day, datetime.min.time(), UTC)
            conn.execute(FILL_SQL, {"day": day.strftime("%Y%m%d"), "start": start, "n": per_day})
            print(f"  filled {day} ({per_day:,} rows, {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        conn.execute("ANALYZE requests")
    finally:
        conn.close()
    return time.perf_counter() - started


def build_rollups(url: str) -> float:
    started = time.perf_counter()
    conn = connect(url, autocommit=False)
    try:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(REBUILD_ROLLUPS_SQL)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE requests_hourly")
    finally:
        conn.close()
    return time.perf_counter() - started


def timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items() if k not in ("since", "until")}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def time_report(url: str, until: datetime) -> dict[str, float]:
    since = until - timedelta(days=7)
    rollups_s, rolled = timed([sys.executable, "-m", "tollway.cli", "report", "--json", "--database-url", url,
                               "--since", since.isoformat(), "--until", until.isoformat()])
    raw_s, raw = timed([sys.executable, "-c", RAW_REPORT, url, since.isoformat(), until.isoformat()])
    if rounded(json.loads(rolled)) != rounded(json.loads(raw)):
        raise SystemExit("the report from the roll-ups differs from the report from the rows")
    return {"rollups_s": rollups_s, "raw_rows_s": raw_s, "ratio": raw_s / rollups_s,
            "requests": json.loads(rolled)["total"]["requests"], "parts_s": _report_parts(url, since, until)}


def _report_parts(url: str, since: datetime, until: datetime) -> dict[str, float]:
    """Where the roll-up report's time goes, in this process: the sums, the attempt counts, the percentiles
    (raw rows), and the whole command over an empty window (its start-up and connection)."""
    from tollway.ledger.postgres_reader import PostgresLedgerReader

    reader, parts = PostgresLedgerReader(url), {}
    for name, call in (("hourly_sums", lambda: sum(1 for _ in reader.hourly(since, until))),
                       ("attempts", lambda: reader.attempts(since, until)),
                       ("percentiles", lambda: reader.latencies(since, until))):
        started = time.perf_counter()
        call()
        parts[name] = time.perf_counter() - started
    started = time.perf_counter()
    empty = (until + timedelta(days=400)).isoformat()
    subprocess.run([sys.executable, "-m", "tollway.cli", "report", "--json", "--database-url", url, "--since", empty],
                   capture_output=True, check=True, cwd=REPO)
    parts["empty_window_report"] = time.perf_counter() - started
    return parts


def time_history(url: str, until: datetime) -> dict[str, float]:
    from tollway.observe.history import load_history
    from tollway.observe.settings import ObserveSettings

    settings = ObserveSettings()
    rollups_s = float("inf")
    for _ in range(2):  # the first run also pays for imports and a cold connection
        started = time.perf_counter()
        loaded = load_history(REPO / "no-such-ledger.db", settings, until, url)
        rollups_s = min(rollups_s, time.perf_counter() - started)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        groups = len(conn.execute(RAW_HOURLY, (until - timedelta(weeks=settings.alerts.baseline.weeks), until)).fetchall())
    window = sum(1 for _ in _window_rows(url, until, settings.dashboard.window_h))
    raw_s = time.perf_counter() - started
    if window != loaded.window_rows:
        raise SystemExit(f"window rows differ: {window} != {loaded.window_rows}")
    return {"rollups_s": rollups_s, "raw_rows_s": raw_s, "ratio": raw_s / rollups_s, "raw_hourly_groups": groups,
            "rollup_groups": loaded.hourly_groups, "window_rows": window}


def _window_rows(url: str, until: datetime, hours: int):
    from tollway.ledger.postgres_reader import PostgresLedgerReader

    return PostgresLedgerReader(url).rows(until - timedelta(hours=hours), until)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    server = PostgresHandle().start()
    try:
        url = server.create_database()
        conn = connect(url)
        try:
            migrate(conn)
        finally:
            conn.close()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        results = {"days": args.days, "rows_per_day": args.rows_per_day, "rows": args.days * args.rows_per_day,
                   "fill_s": fill(url, args.days, args.rows_per_day, today), "rollups_build_s": build_rollups(url)}
        until = today - timedelta(minutes=17)  # mid-hour: both paths read partial edge hours too
        results["report"] = time_report(url, until)
        results["observer_start"] = time_history(url, until)
    finally:
        server.discard()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['rows']:,} rows ({args.days} days x {args.rows_per_day:,}); fill {results['fill_s']:.0f} s, "
          f"roll-ups built in {results['rollups_build_s']:.0f} s")
    for name in ("report", "observer_start"):
        r = results[name]
        print(f"{name}: roll-ups {r['rollups_s']:.2f} s, raw rows {r['raw_rows_s']:.2f} s, ratio {r['ratio']:.1f}x")
    parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in results["report"]["parts_s"].items())
    print(f"report's roll-up path, in parts: {parts}")


if __name__ == "__main__":
    main()

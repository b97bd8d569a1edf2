"""Reading the ledger's past at start-up: spend baselines, the dashboard's window, drift references.

A busy gateway's ledger holds millions of rows per week, so the weeks the baselines need are summed by
the database (one GROUP BY per UTC hour and series; costs are concatenated and added as exact decimals
here, since SQLite would add them as floats), and only the dashboard's window (hours, not weeks) is read
row by row, streamed, never held in memory. Everything is built into fresh objects in a worker thread and
handed to the event loop when complete, so the running observer never sees a half-read past.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tollway.observe.baselines import HourlyHistory
from tollway.observe.drift import DriftWatch
from tollway.observe.ledger_rows import LedgerReadError, read_rows
from tollway.observe.live_figures import LiveFigures
from tollway.observe.settings import ObserveSettings

_FINGERPRINT = "system_fingerprint"

HOURLY_SQL = """
SELECT substr(ts, 1, 13), key_id, route_group, deployment, SUM(prompt_tokens + completion_tokens),
       group_concat(cost_usd, ' ')
FROM requests
WHERE shadow = 0 AND ts >= ? AND ts < ?
GROUP BY 1, 2, 3, 4
"""


@dataclass
class LoadedHistory:
    live: LiveFigures
    hourly: HourlyHistory
    drift: DriftWatch
    window_rows: int
    hourly_groups: int


def load_history(path: Path, settings: ObserveSettings, until: datetime) -> LoadedHistory:
    """The past up to `until` (exclusive): run in a thread. A missing ledger gives an empty past."""
    alerts, dashboard = settings.alerts, settings.dashboard
    live = LiveFigures(dashboard.window_h, dashboard.latency_samples)
    hourly = HourlyHistory(alerts.baseline.weeks)
    drift = DriftWatch.for_alerts(alerts)
    if not path.is_file():
        return LoadedHistory(live, hourly, drift, 0, 0)
    scopes = set(alerts.baseline.scopes)
    groups = _sum_hours(path, hourly, scopes, until - timedelta(weeks=alerts.baseline.weeks), until)
    count = 0
    since = until - timedelta(hours=dashboard.window_h)
    for row in read_rows(path, since, until):
        count += 1
        live.add(row, datetime.fromisoformat(row.ts).timestamp())
        drift.observe(row, getattr(row, _FINGERPRINT, "") or "", alert=False)
    return LoadedHistory(live, hourly, drift, count, groups)


def _sum_hours(path: Path, hourly: HourlyHistory, scopes: set[str], since: datetime, until: datetime) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LedgerReadError(f"{path}: cannot open the ledger: {exc}") from None
    groups = 0
    try:
        for hour_text, key_id, group, deployment, tokens, costs in conn.execute(
                HOURLY_SQL, (since.isoformat(), until.isoformat())):
            groups += 1
            hour = int(datetime.fromisoformat(f"{hour_text}:00:00+00:00").timestamp() // 3600)
            cost = sum((Decimal(c) for c in (costs or "").split()), Decimal(0))
            for scope, name in (("key", key_id), ("route_group", group), ("deployment", deployment)):
                if scope in scopes and name:
                    hourly.add((scope, name), hour, cost, int(tokens or 0))
            if hourly.first_hour is None or hour < hourly.first_hour:
                hourly.first_hour = hour  # traffic began here even if no scope tracks its series
    except sqlite3.Error as exc:
        raise LedgerReadError(f"{path}: cannot read the ledger: {exc}") from None
    finally:
        conn.close()
    return groups

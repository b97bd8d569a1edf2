"""Reading the ledger's past at start-up: spend baselines, the dashboard's window, drift references.

A busy gateway's ledger holds millions of rows per week, so the weeks the baselines need are read as
hourly sums (ledger/reader.py: PostgreSQL's roll-ups, or a GROUP BY over the SQLite file), and only the
dashboard's window (hours, not weeks) is read row by row, streamed, never held in memory. With a
PostgreSQL ledger that past is the whole fleet's, every replica's rows. Everything is built into fresh
objects in a worker thread and handed to the event loop when complete, so the running observer never
sees a half-read past.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tollway.ledger.reader import LedgerReader, SqliteLedgerReader, open_reader
from tollway.observe.baselines import HourlyHistory
from tollway.observe.drift import DriftWatch
from tollway.observe.live_figures import LiveFigures
from tollway.observe.settings import ObserveSettings

_FINGERPRINT = "system_fingerprint"


@dataclass
class LoadedHistory:
    live: LiveFigures
    hourly: HourlyHistory
    drift: DriftWatch
    window_rows: int
    hourly_groups: int
    source: str = ""  # the ledger read, safe to print


def load_history(path: Path, settings: ObserveSettings, until: datetime,
                 database_url: str | None = None) -> LoadedHistory:
    """The past up to `until` (exclusive), from the PostgreSQL ledger at `database_url`, else the SQLite
    file at `path`: run in a thread. A missing SQLite file gives an empty past."""
    alerts, dashboard = settings.alerts, settings.dashboard
    live = LiveFigures(dashboard.window_h, dashboard.latency_samples)
    hourly = HourlyHistory(alerts.baseline.weeks)
    drift = DriftWatch.for_alerts(alerts)
    reader = open_reader(path, database_url)
    if isinstance(reader, SqliteLedgerReader) and not path.is_file():
        return LoadedHistory(live, hourly, drift, 0, 0, reader.description)
    scopes = set(alerts.baseline.scopes)
    groups = _sum_hours(reader, hourly, scopes, until - timedelta(weeks=alerts.baseline.weeks), until)
    count = 0
    for row in reader.rows(until - timedelta(hours=dashboard.window_h), until):
        count += 1
        live.add(row, datetime.fromisoformat(row.ts).timestamp())
        drift.observe(row, getattr(row, _FINGERPRINT, "") or "", alert=False)
    return LoadedHistory(live, hourly, drift, count, groups, reader.description)


def _sum_hours(reader: LedgerReader, hourly: HourlyHistory, scopes: Collection[str], since: datetime,
               until: datetime) -> int:
    """Client traffic's spend and tokens per hour into each tracked series; returns the sums read."""
    groups = 0
    for sums in reader.hourly(since, until):
        if sums.shadow:
            continue
        groups += 1
        hour = int(sums.hour.timestamp() // 3600)
        tokens = sums.prompt_tokens + sums.completion_tokens
        for scope, name in (("key", sums.key_id), ("route_group", sums.route_group), ("deployment", sums.deployment)):
            if scope in scopes and name:
                hourly.add((scope, name), hour, sums.cost_usd, tokens)
        if hourly.first_hour is None or hour < hourly.first_hour:
            hourly.first_hour = hour  # traffic began here even if no scope tracks its series
    return groups

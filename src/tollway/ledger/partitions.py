"""Day partitions of the PostgreSQL ledger: created ahead of the rows, dropped whole by retention.

The writer makes sure the partition of every row's UTC day exists before writing it (a set lookup per
batch; a database call only for a day it has not seen), and every hour creates the next days' ahead and
drops the days older than `ledger.retention_days`. Dropping a partition is a DROP TABLE: no DELETE, no
vacuum debt. The roll-up hours of the dropped days are deleted with them, in the same transaction, so
the roll-ups keep describing exactly the rows that are there. Replicas serialise on an advisory lock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import psycopg

PARTITION_LOCK = 7_413_020_502  # pg_advisory_xact_lock id, beside the migration lock
DAYS_AHEAD = 7
_NAME = re.compile(r"^requests_p(\d{8})$")


def row_day(ts: str) -> date:
    """The UTC day of a ledger timestamp (ISO-8601; UTC in every row the gateway writes)."""
    if ts.endswith("+00:00") and len(ts) >= 10:
        return date.fromisoformat(ts[:10])
    moment = datetime.fromisoformat(ts)
    return (moment if moment.tzinfo is None else moment.astimezone(UTC)).date()


async def ensure_partitions(conn: psycopg.AsyncConnection, days: set[date]) -> None:
    """Create the partitions of `days` that do not exist yet, in one transaction."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for day in sorted(days):
            await conn.execute("SELECT tollway_ensure_partition(%s)", (day,))


async def maintain(conn: psycopg.AsyncConnection, today: date, retention_days: int | None) -> list[str]:
    """Partitions for today and DAYS_AHEAD days ahead; with a retention, drop the days before it.
    Returns the names of the partitions dropped."""
    await ensure_partitions(conn, {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)})
    if retention_days is None:
        return []
    return await drop_before(conn, today - timedelta(days=retention_days))


async def drop_before(conn: psycopg.AsyncConnection, cutoff: date) -> list[str]:
    """Drop every day partition before `cutoff` and the roll-up hours of those days."""
    dropped = []
    start = datetime.combine(cutoff, datetime.min.time(), UTC)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        # Old rows in the default partition (written while their day could not be made) get their day
        # first, so that they go with it rather than outlive their roll-ups.
        await conn.execute("SELECT tollway_ensure_partition(day) FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date "
                           "AS day FROM requests_default WHERE ts < %s) AS old", (start,))
        cursor = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'requests'::regclass")
        for (name,) in await cursor.fetchall():
            match = _NAME.match(name)
            if match and datetime.strptime(match.group(1), "%Y%m%d").date() < cutoff:
                await conn.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
        await conn.execute("DELETE FROM requests_hourly WHERE hour < %s", (start,))
        await conn.execute("DELETE FROM requests_hourly_attempts WHERE hour < %s", (start,))
    return dropped

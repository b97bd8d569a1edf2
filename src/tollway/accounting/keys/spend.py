"""Each key's spend today and this month (UTC), for `tollway keys list`.

Read from the ledger, not the budget counters: the counters exist only for keys with a budget (and in
Redis, only on a shared deployment), while every request has a ledger row. The ledger's hourly sums (the
roll-ups on PostgreSQL, a GROUP BY on SQLite) are keyed by key, so this reads one month of hours, not rows.
Shadow copies are not the key's traffic and are left out. The windows are the budget periods' calendar
day and month in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tollway.ledger.reader import LedgerReader


def spend_per_key(reader: LedgerReader, now: datetime | None = None) -> dict[str, tuple[Decimal, Decimal]]:
    """key id -> (spent today, spent this month), exact."""
    now = now or datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    spent: dict[str, tuple[Decimal, Decimal]] = {}
    for hour in reader.hourly(month, None):
        if hour.shadow or not hour.key_id:
            continue
        day_sum, month_sum = spent.get(hour.key_id, (Decimal(0), Decimal(0)))
        spent[hour.key_id] = (day_sum + hour.cost_usd if hour.hour >= today else day_sum, month_sum + hour.cost_usd)
    return spent

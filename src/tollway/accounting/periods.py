"""Budget windows: which daily or monthly period a moment falls in, and when that period resets.

Windows are UTC. A day starts at `daily_reset_hour_utc`; a month at `monthly_reset_day` at that hour
(days 1-28, so every month has one). A request's spend counts in the period it was admitted in, which is
also the period of its ledger row's timestamp, so ledger sums and counters agree at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

Window = Literal["daily", "monthly"]
WINDOWS: tuple[Window, ...] = ("daily", "monthly")


@dataclass(frozen=True, slots=True)
class Period:
    window: Window
    id: str             # e.g. "2026-11-22" or "2026-11": part of the counter's name
    starts_at: datetime
    resets_at: datetime


class PeriodClock:
    """Computes periods for the configured reset times; caches the current ones (a minute at most)."""

    def __init__(self, daily_reset_hour_utc: int = 0, monthly_reset_day: int = 1) -> None:
        self.hour = daily_reset_hour_utc
        self.day = monthly_reset_day
        self._cache: dict[Window, Period] = {}

    def current(self, window: Window, now: datetime | None = None) -> Period:
        now = now or datetime.now(timezone.utc)
        cached = self._cache.get(window)
        if cached is not None and cached.starts_at <= now < cached.resets_at:
            return cached
        period = self.period(window, now)
        self._cache[window] = period
        return period

    def period(self, window: Window, at: datetime) -> Period:
        at = at.astimezone(timezone.utc)
        if window == "daily":
            start = at.replace(hour=self.hour, minute=0, second=0, microsecond=0)
            if start > at:
                start -= timedelta(days=1)
            return Period("daily", start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))
        start = at.replace(day=self.day, hour=self.hour, minute=0, second=0, microsecond=0)
        if start > at:
            start = _add_months(start, -1)
        return Period("monthly", start.strftime("%Y-%m"), start, _add_months(start, 1))


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)

"""Budget windows: which hourly, daily, weekly or monthly period a moment falls in, and when it resets.

Windows are calendar periods in UTC, so every replica and the ledger agree on them from the clock alone:
an hour starts on the hour; a day at `daily_reset_hour_utc`; a week on Monday at that hour (ISO weeks);
a month on `monthly_reset_day` at that hour (days 1-28, so every month has one). A request's spend
counts in the period it was admitted in, which is also the period of its ledger row's timestamp, so
ledger sums and counters agree at the boundary.

A period's id names its counters and sorts in time: "2026-12-07T14" (hour), "2026-12-07" (day),
"2026-W50" (ISO week of the week's first day), "2026-12" (month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

Window = Literal["hourly", "daily", "weekly", "monthly"]
WINDOWS: tuple[Window, ...] = ("hourly", "daily", "weekly", "monthly")


@dataclass(frozen=True, slots=True)
class Period:
    window: Window
    id: str             # e.g. "2026-11-22" or "2026-11": part of the counter's name
    starts_at: datetime
    resets_at: datetime


class PeriodClock:
    """Computes periods for the configured reset times; caches the current ones (until they end)."""

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
        if window == "hourly":
            start = at.replace(minute=0, second=0, microsecond=0)
            return Period(window, start.strftime("%Y-%m-%dT%H"), start, start + timedelta(hours=1))
        day = at.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        if day > at:
            day -= timedelta(days=1)
        if window == "daily":
            return Period(window, day.strftime("%Y-%m-%d"), day, day + timedelta(days=1))
        if window == "weekly":
            start = day - timedelta(days=day.weekday())  # the Monday of the reset-aligned day
            year, week, _ = start.isocalendar()
            return Period(window, f"{year}-W{week:02d}", start, start + timedelta(days=7))
        if window != "monthly":
            raise ValueError(f"unknown budget window {window!r}")
        start = at.replace(day=self.day, hour=self.hour, minute=0, second=0, microsecond=0)
        if start > at:
            start = _add_months(start, -1)
        return Period(window, start.strftime("%Y-%m"), start, _add_months(start, 1))


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)

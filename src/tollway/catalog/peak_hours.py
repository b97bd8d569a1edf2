"""Is this moment peak time? DeepSeek's time-of-day pricing, evaluated on every request.

Compiled once from the schema so the per-request check is a time-zone conversion, a set lookup and at
most a few integer comparisons. Windows are [start, end): 09:00 is peak, 12:00 is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tollway.catalog.schema import WEEKDAYS, PeakHours


class PeakRule:
    """Peak = one of `days`, not a holiday, inside one of the local-time windows."""

    __slots__ = ("zone", "days", "windows", "holidays", "description")

    def __init__(self, spec: PeakHours, calendar_holidays: Iterable[date] = ()) -> None:
        self.zone = ZoneInfo(spec.timezone)
        self.days = frozenset(WEEKDAYS.index(day) for day in spec.days)
        self.windows = tuple(_minutes(window) for window in spec.windows)
        self.holidays = frozenset(spec.holidays) | frozenset(calendar_holidays)
        self.description = _describe(spec)

    def is_peak(self, at: datetime) -> bool:
        """`at` must be timezone-aware."""
        local = at.astimezone(self.zone)
        if local.weekday() not in self.days or local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.windows)


def _minutes(window: str) -> tuple[int, int]:
    start, end = window.strip().split("-")
    return _minute_of_day(start), _minute_of_day(end)


def _minute_of_day(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _describe(spec: PeakHours) -> str:
    days = f"{spec.days[0].title()}-{spec.days[-1].title()}" if _consecutive(spec.days) else ",".join(spec.days)
    holidays = f", except {spec.calendar} holidays" if spec.calendar else ""
    return f"peak {days} {', '.join(spec.windows)} {spec.timezone}{holidays}"


def _consecutive(days: Sequence[str]) -> bool:
    indexes = [WEEKDAYS.index(day) for day in days]
    return len(indexes) > 1 and indexes == list(range(indexes[0], indexes[0] + len(indexes)))

"""Rolling baselines that know the hour of day and the day of week.

Spend has a weekly rhythm: Monday 10:00 is not Sunday 03:00. Each series (a key, a route group or a
deployment) keeps its hourly totals for the last `weeks` weeks (read back from the ledger at start, then
kept up to date from live requests). The baseline for now is the mean of the same UTC hour on the same
weekday over the weeks seen; with less than a week of history, the same hour over the days seen. Hours
with no traffic count as zero from the first hour the ledger saw any request, so a series that is
usually quiet has a low baseline rather than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

HOURS_PER_WEEK = 168
Series = tuple[str, str]  # (scope, name), e.g. ("key", "team-a")


@dataclass(frozen=True, slots=True)
class Baseline:
    per_hour: Decimal  # the usual amount in one hour
    basis: str         # how it was computed, for the alert text


def hour_of(epoch_s: float) -> int:
    return int(epoch_s // 3600)


class HourlyHistory:
    """Hourly cost and token totals per series, and the first hour any traffic was seen."""

    def __init__(self, weeks: int) -> None:
        self.weeks = weeks
        self.first_hour: int | None = None
        self._newest_hour: int | None = None
        self._hours: dict[Series, dict[int, list]] = {}  # series -> hour -> [cost, tokens]

    def add(self, series: Series, hour: int, cost: Decimal, tokens: int) -> None:
        if self.first_hour is None or hour < self.first_hour:
            self.first_hour = hour
        if self._newest_hour is None or hour > self._newest_hour:
            self._newest_hour = hour
            self.prune(hour)  # once an hour: memory stays at `weeks` of hours even with alerts never evaluated
        hours = self._hours.get(series)
        if hours is None:
            hours = self._hours[series] = {}
        slot = hours.get(hour)
        if slot is None:
            hours[hour] = [cost, tokens]
        else:
            slot[0] += cost
            slot[1] += tokens

    def prune(self, current_hour: int) -> None:
        oldest = current_hour - self.weeks * HOURS_PER_WEEK
        for hours in self._hours.values():
            for hour in [h for h in hours if h < oldest]:
                del hours[hour]

    def baseline(self, series: Series, metric: str, hour: int, min_history_hours: int) -> Baseline | None:
        """What `series` usually has in `hour`, or None while history is too short to say."""
        first = self.first_hour
        if first is None or hour - first < min_history_hours:
            return None
        same_weekday = [hour - HOURS_PER_WEEK * k for k in range(1, self.weeks + 1)
                        if hour - HOURS_PER_WEEK * k >= first]
        if same_weekday:
            hours, basis = same_weekday, f"this hour on this weekday over {len(same_weekday)} week(s)"
        else:
            hours = [hour - 24 * k for k in range(1, 7) if hour - 24 * k >= first]
            basis = f"this hour over {len(hours)} day(s)"
        if not hours:
            return None
        index = 0 if metric == "cost_usd" else 1
        seen = self._hours.get(series, {})
        total = sum((Decimal(seen[h][index]) for h in hours if h in seen), Decimal(0))
        return Baseline(total / len(hours), basis)

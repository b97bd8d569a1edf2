"""Turn hourly ledger totals into a Workload: volume, token mix, weekly shape, growth and model mix.

Why these estimators:
- Daily volume is the window's total over the calendar days it spans (first to last UTC day, quiet days
  counted as zero), so a bursty week is not mistaken for a busy one.
- The shape is the mean of each hour-of-week over the window (hour-of-day when the window is shorter
  than a week), which is what time-of-day prices and provisioned overflow need; its busiest hour over
  the mean hour is the peak-to-average ratio. Within-hour bursts are not visible at this grain.
- Growth is a least-squares fit of log daily volume over whole days (the first and last day may be
  partial and are dropped), needing at least 7 such days; a shorter window reports zero growth and says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from statistics import linear_regression

from tollway.plan.ledger_source import HourBucket, TrafficReader
from tollway.plan.scenario import ScenarioError
from tollway.plan.workload import HOURS_PER_WEEK, ModelShare, Workload

MIN_DAYS_FOR_GROWTH = 7
DAYS_PER_MONTH_FLOAT = 365 / 12


def workload_from_ledger(reader: TrafficReader, since: datetime | None = None, until: datetime | None = None,
                         batchable_share: Decimal = Decimal(0)) -> Workload:
    """Derive the workload from answered, non-shadow ledger rows in [since, until)."""
    buckets = reader.hourly_buckets(since, until)
    if not buckets:
        raise ScenarioError(f"--from-ledger: {reader.description} has no answered (status ok, non-shadow) "
                            "requests in the chosen window")
    first_day, last_day = span_days(buckets, since, until)
    days = (last_day - first_day).days + 1
    totals = sum_tokens(buckets)
    if totals["prompt"] + totals["completion"] <= 0:
        raise ScenarioError(f"--from-ledger: {reader.description} has requests but no tokens in the window")
    growth, growth_note = fit_growth(buckets, first_day, last_day)
    notes = [f"derived from {totals['requests']} requests over {days} day(s), "
             f"{first_day.isoformat()} to {last_day.isoformat()} UTC"]
    if growth_note:
        notes.append(growth_note)
    weights, shape_note = hour_shape(buckets, first_day, days)
    notes.append(shape_note)
    per_day = Decimal(days)
    return Workload(
        daily_input_tokens=Decimal(totals["prompt"]) / per_day,
        daily_output_tokens=Decimal(totals["completion"]) / per_day,
        daily_cached_tokens=Decimal(totals["cached"]) / per_day,
        daily_cache_write_tokens=Decimal(totals["cache_write"]) / per_day,
        hour_weights=weights,
        peak_to_average=max(weights) * HOURS_PER_WEEK / sum(weights, Decimal(0)),
        growth_per_month=growth,
        batchable_share=batchable_share,
        mean_prompt_tokens=round(totals["prompt"] / totals["requests"]) if totals["requests"] else 0,
        model_mix=model_mix(buckets, per_day),
        source=f"ledger {reader.description}",
        notes=tuple(notes),
    )


def span_days(buckets: list[HourBucket], since: datetime | None, until: datetime | None) -> tuple[date, date]:
    """First and last UTC day of the window: the flags when given, else the data's own extent."""
    first = since.date() if since is not None else buckets[0].hour.date()
    last = (until - timedelta(microseconds=1)).date() if until is not None else buckets[-1].hour.date()
    return first, max(last, first)


def sum_tokens(buckets: list[HourBucket]) -> dict[str, int]:
    totals = {"requests": 0, "prompt": 0, "cached": 0, "cache_write": 0, "completion": 0}
    for bucket in buckets:
        totals["requests"] += bucket.requests
        totals["prompt"] += bucket.prompt_tokens
        totals["cached"] += bucket.cached_tokens
        totals["cache_write"] += bucket.cache_write_tokens
        totals["completion"] += bucket.completion_tokens
    return totals


def hour_shape(buckets: list[HourBucket], first_day: date, days: int) -> tuple[tuple[Decimal, ...], str]:
    """168 weights: the mean tokens of each hour-of-week (or hour-of-day, repeated, under a week of data)."""
    weekly = days >= 7
    slots = HOURS_PER_WEEK if weekly else 24
    tokens = [0] * slots
    for bucket in buckets:
        slot = bucket.hour.weekday() * 24 + bucket.hour.hour if weekly else bucket.hour.hour
        tokens[slot] += bucket.prompt_tokens + bucket.completion_tokens
    occurrences = [0] * slots
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for hour in range(24):
            occurrences[day.weekday() * 24 + hour if weekly else hour] += 1
    means = [Decimal(tokens[i]) / occurrences[i] if occurrences[i] else Decimal(0) for i in range(slots)]
    week = means if weekly else means * 7
    grain = "hour of week" if weekly else "hour of day (under 7 days of data)"
    return tuple(week), f"hourly shape: mean tokens per {grain}, UTC"


def fit_growth(buckets: list[HourBucket], first_day: date, last_day: date) -> tuple[Decimal, str]:
    """Monthly growth from a log-linear fit of whole days' volume; zero (with a note) when data is short."""
    daily: dict[date, int] = defaultdict(int)
    for bucket in buckets:
        daily[bucket.hour.date()] += bucket.prompt_tokens + bucket.completion_tokens
    whole_days = [first_day + timedelta(days=i) for i in range(1, (last_day - first_day).days)]
    points = [(float((day - first_day).days), math.log(daily[day])) for day in whole_days if daily.get(day, 0) > 0]
    if len(points) < MIN_DAYS_FOR_GROWTH:
        return Decimal(0), (f"growth: not estimated (needs {MIN_DAYS_FOR_GROWTH} whole days with traffic, "
                            f"found {len(points)}); assumed 0 per month")
    slope, _ = linear_regression([x for x, _ in points], [y for _, y in points])
    monthly = math.exp(slope * DAYS_PER_MONTH_FLOAT) - 1
    return Decimal(f"{monthly:.6f}"), f"growth: log-linear fit over {len(points)} whole days"


def model_mix(buckets: list[HourBucket], days: Decimal) -> tuple[ModelShare, ...]:
    """Daily tokens per (provider, model), largest first."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for bucket in buckets:
        row = sums[(bucket.provider, bucket.model)]
        row[0] += bucket.prompt_tokens
        row[1] += bucket.cached_tokens
        row[2] += bucket.cache_write_tokens
        row[3] += bucket.completion_tokens
        row[4] += bucket.requests
    shares = [
        ModelShare(provider=provider, model=model, daily_input_tokens=Decimal(row[0]) / days,
                   daily_cached_tokens=Decimal(row[1]) / days, daily_cache_write_tokens=Decimal(row[2]) / days,
                   daily_output_tokens=Decimal(row[3]) / days, daily_requests=Decimal(row[4]) / days)
        for (provider, model), row in sums.items()
    ]
    return tuple(sorted(shares, key=lambda s: s.daily_input_tokens + s.daily_output_tokens, reverse=True))

"""Budget periods start and reset where the config says."""

from datetime import datetime, timezone

from tollway.accounting.periods import PeriodClock


def test_daily_and_monthly_periods_at_the_default_reset() -> None:
    clock = PeriodClock()
    at = datetime(2026, 11, 22, 6, 40, tzinfo=timezone.utc)
    day, month = clock.period("daily", at), clock.period("monthly", at)
    assert (day.id, day.starts_at.isoformat(), day.resets_at.isoformat()) == (
        "2026-11-22", "2026-11-22T00:00:00+00:00", "2026-11-23T00:00:00+00:00")
    assert (month.id, month.resets_at.isoformat()) == ("2026-11", "2026-12-01T00:00:00+00:00")
    december = clock.period("monthly", datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc))
    assert december.resets_at == datetime(2027, 1, 1, tzinfo=timezone.utc)


def test_configured_reset_hour_and_day_move_the_boundaries() -> None:
    clock = PeriodClock(daily_reset_hour_utc=8, monthly_reset_day=15)
    before = clock.period("daily", datetime(2026, 11, 22, 7, 59, tzinfo=timezone.utc))
    after = clock.period("daily", datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc))
    assert (before.id, after.id) == ("2026-11-21", "2026-11-22")
    assert after.resets_at == datetime(2026, 11, 23, 8, tzinfo=timezone.utc)
    month = clock.period("monthly", datetime(2026, 1, 10, tzinfo=timezone.utc))
    assert (month.id, month.starts_at, month.resets_at) == (
        "2025-12", datetime(2025, 12, 15, 8, tzinfo=timezone.utc), datetime(2026, 1, 15, 8, tzinfo=timezone.utc))


def test_current_period_is_cached_only_while_it_lasts() -> None:
    clock = PeriodClock()
    first = clock.current("daily", datetime(2026, 11, 22, 23, 59, 59, tzinfo=timezone.utc))
    second = clock.current("daily", datetime(2026, 11, 23, 0, 0, 0, tzinfo=timezone.utc))
    assert (first.id, second.id) == ("2026-11-22", "2026-11-23")


def test_an_hour_starts_on_the_hour_whatever_the_reset_hour() -> None:
    clock = PeriodClock(daily_reset_hour_utc=8)
    before = clock.period("hourly", datetime(2026, 12, 7, 13, 59, 59, 999999, tzinfo=timezone.utc))
    after = clock.period("hourly", datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc))
    assert (before.id, after.id) == ("2026-12-07T13", "2026-12-07T14")
    assert (after.starts_at, after.resets_at) == (datetime(2026, 12, 7, 14, tzinfo=timezone.utc),
                                                  datetime(2026, 12, 7, 15, tzinfo=timezone.utc))
    last = clock.period("hourly", datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc))
    assert last.resets_at == datetime(2027, 1, 1, tzinfo=timezone.utc)


def test_a_week_is_an_iso_week_from_monday_at_the_reset_hour() -> None:
    clock = PeriodClock()
    sunday = clock.period("weekly", datetime(2026, 12, 6, 23, 59, 59, tzinfo=timezone.utc))   # Sunday
    monday = clock.period("weekly", datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc))         # Monday
    assert (sunday.id, monday.id) == ("2026-W49", "2026-W50")
    assert (monday.starts_at, monday.resets_at) == (datetime(2026, 12, 7, tzinfo=timezone.utc),
                                                    datetime(2026, 12, 14, tzinfo=timezone.utc))
    shifted = PeriodClock(daily_reset_hour_utc=8)
    early_monday = shifted.period("weekly", datetime(2026, 12, 7, 7, 59, tzinfo=timezone.utc))
    assert (early_monday.id, early_monday.starts_at) == ("2026-W49", datetime(2026, 11, 30, 8, tzinfo=timezone.utc))
    assert shifted.period("weekly", datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)).id == "2026-W50"
    # the ISO year of the week's Monday: 2026-12-28 begins week 53 of 2026, which runs into 2027
    new_year = clock.period("weekly", datetime(2027, 1, 2, 12, tzinfo=timezone.utc))
    assert (new_year.id, new_year.starts_at) == ("2026-W53", datetime(2026, 12, 28, tzinfo=timezone.utc))
    assert clock.period("weekly", datetime(2027, 1, 4, tzinfo=timezone.utc)).id == "2027-W01"


def test_a_month_at_its_reset_day_and_hour_boundary() -> None:
    clock = PeriodClock(daily_reset_hour_utc=6, monthly_reset_day=28)
    before = clock.period("monthly", datetime(2027, 2, 28, 5, 59, tzinfo=timezone.utc))
    after = clock.period("monthly", datetime(2027, 2, 28, 6, 0, tzinfo=timezone.utc))
    assert (before.id, after.id) == ("2027-01", "2027-02")
    assert after.resets_at == datetime(2027, 3, 28, 6, tzinfo=timezone.utc)

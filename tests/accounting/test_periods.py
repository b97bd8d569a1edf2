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

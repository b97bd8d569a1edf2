"""Nano-dollar counters round up and stay exact; budget periods start and reset where the config says."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tollway.core.money import MAX_NANO, from_nano, to_nano, usd_text
from tollway.accounting.periods import PeriodClock


def test_catalog_costs_are_whole_nano_dollars_and_finer_ones_round_up() -> None:
    assert to_nano(Decimal("0.000000028")) == 28                 # 1 token at $0.028/M
    assert to_nano("1") == 1_000_000_000
    assert to_nano(Decimal(1) / Decimal(3)) == 333_333_334      # a CNY conversion: never under-counted
    assert to_nano("0") == 0
    assert from_nano(28) == Decimal("0.000000028")
    assert from_nano(to_nano("12.345678901")) == Decimal("12.345678901")


def test_amounts_a_lua_double_cannot_hold_exactly_are_refused() -> None:
    assert to_nano(from_nano(MAX_NANO)) == MAX_NANO
    with pytest.raises(ValueError, match="beyond what a budget counter holds"):
        to_nano(from_nano(MAX_NANO + 1))
    with pytest.raises(ValueError, match="not a finite amount"):
        to_nano(Decimal("NaN"))


def test_usd_text_is_exact_and_readable() -> None:
    assert usd_text(5_000_000_000) == "5.00"
    assert usd_text(1_500_000_000) == "1.50"
    assert usd_text(123) == "0.000000123"


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

"""Nano-dollar counters round up and stay exact."""

from decimal import Decimal

import pytest

from tollway.core.money import MAX_NANO, from_nano, to_nano, usd_text


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

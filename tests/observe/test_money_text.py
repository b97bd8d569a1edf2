"""Money shown one way: the Python rule, and the dashboard's JavaScript giving the same text for the same sums."""

import random
from decimal import Decimal

import pytest

from tollway.core.money_text import usd_text
from tollway.observe.dashboard import ASSETS_DIR

CASES = [
    ("0", "$0.00"), ("0E-9", "$0.00"), ("0.01", "$0.01"), ("12.345", "$12.35"), ("12.335", "$12.34"),
    ("1234.5678", "$1,234.57"), ("410573.12", "$410,573.12"), ("5", "$5.00"), ("-1.5", "-$1.50"),
    ("0.0035", "$0.0035"), ("0.005", "$0.005"), ("0.00123456", "$0.00123"), ("0.000000123", "$0.000000123"),
    ("0.0099949", "$0.00999"), ("0.009996", "$0.01"), ("-0.00042", "-$0.00042"), ("1E-12", "$0.000000000001"),
]


@pytest.mark.parametrize("amount, shown", CASES)
def test_cents_from_a_cent_up_and_three_significant_digits_below(amount, shown):
    assert usd_text(Decimal(amount)) == shown


def test_the_text_never_hides_real_spend_as_zero():
    assert usd_text(Decimal("0.000000001")) != "$0.00"


def _random_amounts(count: int) -> list[str]:
    rng = random.Random(7)
    amounts = []
    for _ in range(count):
        digits = str(rng.randrange(1, 10**rng.randrange(1, 13)))
        scale = rng.randrange(0, 13)
        padded = digits.rjust(scale + 1, "0")
        text = digits if scale == 0 else f"{padded[:-scale]}.{padded[-scale:]}"
        amounts.append(("-" if rng.random() < 0.1 else "") + text)
    return amounts


@pytest.mark.slow
def test_the_dashboard_shows_every_sum_as_the_terminal_does(browser, tmp_path):
    page = tmp_path / "money.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><script src='{(ASSETS_DIR / 'money.js').as_uri()}'></script>")
    browser.get(page.as_uri())
    amounts = [amount for amount, _ in CASES] + _random_amounts(400)
    shown = browser.execute_script("return arguments[0].map(usd);", amounts)
    expected = [usd_text(Decimal(amount)) for amount in amounts]
    mismatches = [(a, s, e) for a, s, e in zip(amounts, shown, expected, strict=True) if s != e]
    assert not mismatches, mismatches[:10]

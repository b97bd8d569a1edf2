"""Money for people to read: one rule for every table, report and the dashboard.

- sums of a cent or more show cents: `$12.34`, `$1,234.57`;
- sums under a cent show three significant digits: `$0.00123`, `$0.0000004` (trailing zeros dropped);
- zero is `$0.00`; a negative sum puts the sign first: `-$1.50`.

Why this rule: cents are what people compare, but most single requests cost less than a cent, and
`$0.00` for real spend would hide it; nine decimals of a Decimal fill a column and say no more. Rounding
is half-up, the rule people apply by hand (dashboard_assets/money.js does the same in the browser). The
exact Decimal stays in `--json` and CSV output; this is display only.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
SIGNIFICANT_DIGITS = 3


def usd_text(amount: Decimal | int | str) -> str:
    """`amount` US dollars as `$12.34`, or `$0.00123` below a cent."""
    value = Decimal(amount)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= CENT or value == 0:
        return f"{sign}${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"
    step = Decimal(1).scaleb(value.adjusted() - SIGNIFICANT_DIGITS + 1)
    rounded = value.quantize(step, rounding=ROUND_HALF_UP)
    if rounded >= CENT:  # 0.009996 rounds up to a cent
        return f"{sign}${rounded.quantize(CENT):,}"
    text = f"{rounded:f}".rstrip("0")
    return f"{sign}${text}"

"""Money: exact text for amounts, and whole nano-dollars (1e-9 USD) for shared counters.

A request's cost is an exact Decimal from pricing to the ledger row; `decimal_text` is the one way it
becomes text (for the row and the cost header), so every reader parses back the same amount.


Redis scripts do arithmetic in Lua doubles, which hold integers exactly up to 2**53: in nano-dollars that
is about nine million dollars per budget window, and a catalog rate given to three decimals per million
tokens is a whole number of nano-dollars per token, so most costs convert without rounding. A cost that
is finer (a CNY price converted to USD) is rounded UP, so counters never under-state spend: the ledger
keeps the exact Decimal, and the two differ by less than one nano-dollar per request.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

NANO_PER_USD = 10**9
MAX_NANO = 2**53 - 1  # the largest integer a Lua double (and so a Redis script) holds exactly


def to_nano(usd: Decimal | str) -> int:
    """USD to whole nano-dollars, rounded up; raises ValueError for NaN, infinities and out-of-range sums."""
    value = Decimal(usd)
    if not value.is_finite():
        raise ValueError(f"not a finite amount of money: {usd!r}")
    nano = int((value * NANO_PER_USD).to_integral_value(rounding=ROUND_CEILING))
    if abs(nano) > MAX_NANO:
        raise ValueError(f"${value} is beyond what a budget counter holds exactly (${MAX_NANO / NANO_PER_USD:,.0f})")
    return nano


def from_nano(nano: int) -> Decimal:
    """Whole nano-dollars back to an exact USD Decimal."""
    return Decimal(nano).scaleb(-9)


def usd_text(nano: int) -> str:
    """An exact, human-friendly USD amount: trailing zeros dropped, at least two decimals."""
    value = from_nano(nano).normalize()
    if value == value.to_integral_value():
        return f"{value:.2f}"
    exponent = value.as_tuple().exponent
    return f"{value:f}" if isinstance(exponent, int) and -exponent > 2 else f"{value:.2f}"


def decimal_text(amount: Decimal) -> str:
    """Exact, canonical text for an amount: no exponent, no trailing zeros ("0", "0.0000123")."""
    return f"{amount.normalize():f}"


def exact_text(nano: int) -> str:
    """`decimal_text` of an amount in nano-dollars, for JSON: "0.078", "0"."""
    return decimal_text(from_nano(nano))


_POWERS = [10**n for n in range(10)]


def text_to_nano(text: str) -> int:
    """`to_nano` of a USD amount given as text, without Decimal for plain "123.456" strings (a ledger
    row's cost, on every settle); anything else (exponents, signs) goes through to_nano."""
    whole, _, fraction = text.partition(".")
    digits = whole + fraction
    if not (whole and digits.isdigit() and digits.isascii()):
        return to_nano(text)
    scale = 9 - len(fraction)
    nano = int(digits) * _POWERS[scale] if scale >= 0 else -(-int(digits) // 10 ** -scale)  # rounded up
    if nano > MAX_NANO:
        return to_nano(text)  # raises, naming the amount
    return nano


def nano_of(cost: Decimal) -> int:
    """`to_nano` (rounded up) of a cost pricing made, from its exact ratio: settle runs on every request with
    a budget or limit, and this skips the copy and the Decimal context arithmetic `to_nano` does."""
    numerator, denominator = cost.as_integer_ratio()
    nano = -(-numerator * NANO_PER_USD // denominator)
    if nano > MAX_NANO or nano < -MAX_NANO:
        return to_nano(cost)  # raises, naming the amount
    return nano

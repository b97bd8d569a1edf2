"""What one upstream call cost, in exact US dollars.

cost = (uncached prompt x input + cached x cached_input + cache writes x cache_write
        + completion x output) / 1,000,000

Every term is Decimal arithmetic with 60 significant digits, so a result is exact for any real token
count and any catalog rate (1 token at $0.01/M is exactly $0.00000001). A rate the catalog does not know
is never treated as free: if tokens would be billed at it, cost_usd raises UnknownPriceError, and
try_cost_usd returns None so the caller can flag the row.
"""

from __future__ import annotations

from decimal import Context, Decimal

from tollway.catalog.pricing import Price
from tollway.protocol.usage import Usage

_EXACT = Context(prec=60)
_ZERO = Decimal(0)


class UnknownPriceError(ValueError):
    """Tokens would be billed at a rate the catalog does not know (or there is no price at all)."""


def cost_usd(usage: Usage, price: Price | None) -> Decimal:
    """Exact USD cost of `usage` at `price` (rates per million tokens). Raises UnknownPriceError when
    `price` is None or a rate needed for these tokens is unknown."""
    if price is None:
        raise UnknownPriceError("no catalog price for this provider/model/time/tier; add one under `catalog:` "
                                "in tollway.yaml (see docs/catalog.md)")
    write_1h = min(getattr(usage, "cache_write_1h_tokens", 0), usage.cache_write_tokens)
    rate_1h = price.cache_write if price.cache_write_1h is None else price.cache_write_1h
    terms = (
        ("input", usage.uncached_prompt_tokens, price.input),
        ("cached_input", usage.cached_tokens, price.cached_input),
        ("cache_write", usage.cache_write_tokens - write_1h, price.cache_write),
        ("cache_write_1h", write_1h, rate_1h),
        ("output", usage.completion_tokens, price.output),
    )
    total = _ZERO
    missing = []
    for name, tokens, rate in terms:
        if tokens <= 0:
            continue
        if rate.is_nan():
            missing.append(f"{name} ({tokens} tokens)")
            continue
        total = _EXACT.add(total, _EXACT.multiply(Decimal(tokens), rate))
    if missing:
        raise UnknownPriceError(_missing_message(price, missing))
    return total.scaleb(-6, _EXACT)


def try_cost_usd(usage: Usage, price: Price | None) -> Decimal | None:
    """Like cost_usd, but None instead of an exception when a needed rate is unknown."""
    try:
        return cost_usd(usage, price)
    except UnknownPriceError:
        return None


def _missing_message(price: Price, missing: list[str]) -> str:
    name = f"{price.provider}/{price.model}" if price.provider else "this model"
    why = f" [{price.note}]" if price.note else ""
    return (f"{name}: the catalog has no {', '.join(missing)} price{why} (source: {price.source}); "
            "add the rate under `catalog:` in tollway.yaml")

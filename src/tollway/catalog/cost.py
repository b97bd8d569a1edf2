"""What one upstream call cost, in exact US dollars.

cost = (uncached prompt x input + cached x cached_input (explicit-cache hits x explicit_cached_input)
        + cache writes x cache_write + completion x output) / 1,000,000

Every term is Decimal arithmetic with 60 significant digits, so a result is exact for any real token
count and any catalog rate (1 token at $0.01/M is exactly $0.00000001). A CNY price is costed in CNY and
divided by cny_per_usd once, at the end; only that division can round (at 60 digits). A rate the catalog does not know
is never treated as free: if tokens would be billed at it, cost_usd raises UnknownPriceError, and
try_cost_usd returns None so the caller can flag the row.
"""

from __future__ import annotations

from decimal import Context, Decimal

from tollway.catalog.pricing import Price
from tollway.core.usage import Usage

_EXACT = Context(prec=60)
_ADD, _MULTIPLY = _EXACT.add, _EXACT.multiply
_ZERO = Decimal(0)
_UNKNOWN = Decimal("NaN")
_RATE_NAMES = ("input", "cached_input", "explicit_cached_input", "cache_write", "cache_write_1h", "output")


class UnknownPriceError(ValueError):
    """Tokens would be billed at a rate the catalog does not know (or there is no price at all)."""


def cost_usd(usage: Usage, price: Price | None) -> Decimal:
    """Exact USD cost of `usage` at `price` (rates per million tokens). Raises UnknownPriceError when
    `price` is None or a rate needed for these tokens is unknown."""
    if price is None:
        raise UnknownPriceError("no catalog price for this provider/model/time/tier; add one under `catalog:` "
                                "in tollway.yaml (see docs/catalog.md)")
    rates, divisor = _billing_rates(price)
    written, cached = usage.cache_write_tokens, usage.cached_tokens
    write_1h = explicit = 0
    if type(usage) is not Usage:
        write_1h = min(getattr(usage, "cache_write_1h_tokens", 0), written)
        explicit = min(getattr(usage, "explicit_cached_tokens", 0), cached)
    counts = (usage.uncached_prompt_tokens, cached - explicit, explicit, written - write_1h, write_1h,
              usage.completion_tokens)
    total = _ZERO
    for tokens, rate in zip(counts, rates):
        if tokens > 0:
            if rate.is_nan():
                missing = [f"{name} ({count} tokens)" for name, count, known in zip(_RATE_NAMES, counts, rates)
                           if count > 0 and known.is_nan()]
                raise UnknownPriceError(_missing_message(price, missing))
            total = _ADD(total, _MULTIPLY(tokens, rate))
    total = total.scaleb(-6, _EXACT)
    return total if divisor is None else _EXACT.divide(total, divisor)


# Billing rates per Price, made once: a request's price is one of a few catalog objects, and unpacking one
# (a dict per rate name, a CNY check) cost more than the arithmetic. Keyed by id() with the Price kept in
# the value, so an id is never reused while its entry lives; bounded so config reloads cannot grow it.
_rates_cache: dict[int, tuple[Price, tuple[tuple[Decimal, ...], Decimal | None]]] = {}


def _billing_rates(price: Price) -> tuple[tuple[Decimal, ...], Decimal | None]:
    """The rates to multiply by (in _RATE_NAMES order), and what to divide the sum by.

    A CNY price is costed in CNY and converted once at the end, so 7.2 CNY at 7.2 CNY/USD is exactly $1
    (converting each rate first would leave a rounding tail).
    """
    cached = _rates_cache.get(id(price))
    if cached is not None and cached[0] is price:
        return cached[1]
    if len(_rates_cache) >= 1024:
        _rates_cache.clear()
    original = price.original
    if original is not None and original.get("cny_per_usd"):
        found = tuple(_known(original.get(name, original.get("cached_input"))) if name == "explicit_cached_input"
                      else _known(original.get(name)) for name in _RATE_NAMES), original["cny_per_usd"]
    else:
        write_1h = price.cache_write if price.cache_write_1h is None else price.cache_write_1h
        explicit = price.cached_input if price.explicit_cached_input is None else price.explicit_cached_input
        found = (price.input, price.cached_input, explicit, price.cache_write, write_1h, price.output), None
    _rates_cache[id(price)] = (price, found)
    return found


def _known(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else _UNKNOWN


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

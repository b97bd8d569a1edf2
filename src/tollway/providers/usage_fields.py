"""Reading token counts out of a provider's JSON without ever raising on an odd shape.

Every dialect's usage parser reads through these: a count that is missing, null, text, a bool or
negative counts as 0, and a field that should be an object but is not reads as an empty one. A usage
block is the provider's to get wrong; the request it belongs to must still get its ledger row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard

EMPTY: Mapping = {}


def count(value: object) -> int:
    """A token count from JSON: non-negative int; anything else (None, text, bool) is 0."""
    if type(value) is int:  # the usual cases first: a plain JSON integer (bool is a subclass, not this type)
        return value if value > 0 else 0
    if value is None:
        return 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return max(int(value), 0)
    return 0


def mapping(value: object) -> Mapping:
    """`value` if it is a JSON object, else an empty one."""
    if type(value) is dict:  # what JSON decoders give: skip the abstract-class check
        return value
    if value is None:
        return EMPTY
    return value if isinstance(value, Mapping) else EMPTY


def is_mapping(value: object) -> TypeGuard[Mapping]:
    """A JSON object (or any Mapping); a TypeGuard so a checked value reads as a Mapping after the test."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def first_choice(container: Mapping) -> Mapping:
    """`choices[0]` of a Chat Completions body or chunk, or an empty object."""
    choices = container.get("choices")
    if isinstance(choices, list) and choices:
        return mapping(choices[0])
    return EMPTY

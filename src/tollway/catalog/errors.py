"""Errors raised while reading catalog data, worded for the person who has to fix the file.

A price catalog is edited by hand, so every complaint names where the bad value is: the file (or the
config section), the key path inside it (``models[3].prices[0].input``) and what is wrong with the value.
"""

from __future__ import annotations

from pydantic import ValidationError


class CatalogError(ValueError):
    """Bad catalog or override data. The message names the file, the key path and what is wrong."""


def key_path(loc: tuple[str | int, ...], prefix: str = "") -> str:
    """Render a pydantic location tuple as ``models[3].prices[0].input``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "tagged-union", "union[")) or part == "[key]":
            continue  # validator bookkeeping, not a key the user wrote
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


def from_validation_error(origin: str, exc: ValidationError, prefix: str = "") -> CatalogError:
    """One CatalogError listing every problem pydantic found, each with its key path and bad value."""
    lines = []
    for error in exc.errors():
        where = key_path(tuple(error["loc"]), prefix)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field {error['loc'][-1]!r} (check the spelling; see docs/catalog.md)"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] != "value_error":
            message = f"{message} (got {_shown(error.get('input'))})"
        lines.append(f"{where}: {message}")
    return CatalogError(f"{origin}: " + "; ".join(lines))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""A deterministic instance of a JSON schema: what the emulator answers when structured output is asked for.

Agents and structured-output clients parse the model's answer against the schema they sent (OpenAI's
`response_format: json_schema`, the Responses API's `text.format`, Gemini's `responseSchema`, a tool's
`parameters` / `input_schema`), so a rehearsal needs an answer that validates, and the same answer for the
same request so tests can predict it. The instance covers what those schemas use: objects (every declared
property, required or not), arrays (minItems..maxItems), enum and const, strings (length bounds and the
common formats), numbers and integers (bounds, multipleOf), booleans, null, `$ref` into `$defs`/
`definitions`, and anyOf/oneOf/allOf (the first branch; allOf merged). Strings are drawn in order from a
word list starting at `seed` (seed 0: the first string is "Paris"); numbers come from a generator seeded
the same way, so an instance depends only on the schema and the seed.
"""

from __future__ import annotations

import math
import random
from typing import Any

WORDS = ("Paris", "Rome", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Seoul", "Accra", "Hanoi")
FORMATS = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "time": "00:00:00Z",
           "email": "user@example.com", "uri": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000",
           "ipv4": "192.0.2.1", "ipv6": "2001:db8::1", "hostname": "example.com"}
MAX_DEPTH = 12  # a recursive schema stops here: optional parts are left out, required ones get their minimum


class SchemaInstance:
    """One instance's generator state: the word counter and the number generator."""

    def __init__(self, root: dict[str, Any], seed: int = 0) -> None:
        self.root = root
        self.seed = seed
        self.words = 0
        self.rng = random.Random(seed)

    def build(self, schema: Any = None, depth: int = 0) -> Any:
        schema = self.root if schema is None else schema
        if not isinstance(schema, dict):
            return None  # `true` / `{}`-like schemas accept anything; null is the simplest thing
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self.rng.randrange(len(schema["enum"]))]
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.build(self._first_non_null(schema[key]), depth + 1)
        if isinstance(schema.get("allOf"), list):
            return self.build(_merge(schema), depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        return getattr(self, f"_{kind}", self._null)(schema, depth)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        for _ in range(32):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                return schema
            target: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) \
                        else None
            schema = target if isinstance(target, dict) else {}
        return schema

    @staticmethod
    def _first_non_null(branches: list[Any]) -> Any:
        for branch in branches:
            if not (isinstance(branch, dict) and branch.get("type") == "null"):
                return branch
        return branches[0]

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        required = set(schema.get("required") or [])
        result = {}
        for name, sub in properties.items():
            if depth >= MAX_DEPTH and name not in required:
                continue
            result[name] = self.build(sub, depth + 1)
        return result

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
        high = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = low if depth >= MAX_DEPTH else max(low, 2 if high is None else min(2, high))
        prefix = schema.get("prefixItems")
        if not isinstance(prefix, list):
            prefix = []
        items = schema.get("items", {})
        values = [self.build(sub, depth + 1) for sub in prefix[:max(count, len(prefix))]]
        while len(values) < count:
            values.append(self.build(items, depth + 1))
        return values

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        if fmt in FORMATS:
            return FORMATS[fmt]
        word = WORDS[(self.seed + self.words) % len(WORDS)]
        self.words += 1
        low = schema.get("minLength", 0) if isinstance(schema.get("minLength"), int) else 0
        high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
        while len(word) < low:
            word += word.lower()
        return word[:high] if high is not None else word

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        low, high = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            return self.rng.randint(first, max(first, last)) * step
        return self.rng.randint(low, high)

    def _number(self, schema: dict[str, Any], depth: int) -> float | int:
        if isinstance(schema.get("multipleOf"), int):
            return self._integer(schema, depth)
        low, high = _bounds(schema, integer=False)
        return round(low + (high - low) * self.rng.random(), 2) if high > low else low

    def _boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any], depth: int) -> None:
        return None


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    """The closed range a value may take, from minimum/maximum and their exclusive forms."""
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    nudge = 1 if integer else 0.01
    if isinstance(ex_low, (int, float)) and not isinstance(ex_low, bool):
        low = ex_low + nudge
    if isinstance(ex_high, (int, float)) and not isinstance(ex_high, bool):
        high = ex_high - nudge
    low = low if isinstance(low, (int, float)) else (0 if high is None or high >= 0 else high - 100)
    high = high if isinstance(high, (int, float)) else low + 100
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return low, max(low, high)


def _merge(schema: dict[str, Any]) -> dict[str, Any]:
    """allOf as one schema: properties and required lists joined, the first type kept."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if not isinstance(part, dict):
            continue
        merged.setdefault("type", part.get("type"))
        merged["properties"] = {**(part.get("properties") or {}), **(merged.get("properties") or {})}
        merged["required"] = [*(merged.get("required") or []), *(part.get("required") or [])]
    return merged


def schema_instance(schema: Any, seed: int = 0) -> Any:
    """A value valid against `schema` (as far as the features above go), the same for the same seed."""
    if not isinstance(schema, dict):
        return {}
    return SchemaInstance(schema, seed).build()

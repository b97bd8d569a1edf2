"""The catalog: which price was in force for a (provider, model) at a moment, answered fast.

Built-in data, user files and config overrides are merged by (provider, model): a later source replaces
an earlier entry whole, or adds a new one. Each entry's versions are compiled and sorted once, so
`price()` on the request path is an alias lookup, a bisect over version start times and a table lookup.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tollway.catalog.errors import CatalogError
from tollway.catalog.pricing import Price, VersionPricer
from tollway.catalog.schema import SERVICE_TIERS, WILDCARD_MODEL, ModelEntry, PriceVersion
from tollway.catalog.sources import SourceData, builtin_sources, file_source, override_source

_NEG_INF = float("-inf")
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


class _Timeline:
    """Versions in force one after another, sorted by start, ready for bisect."""

    __slots__ = ("starts", "pricers")

    def __init__(self, pricers: list[VersionPricer]) -> None:
        # at the same start a region's own version comes after (so wins over) one for every region
        self.pricers = sorted(pricers, key=lambda pricer: (_start_key(pricer), pricer.version.region is not None))
        self.starts = [_start_key(pricer) for pricer in self.pricers]

    def at(self, timestamp: float) -> VersionPricer | None:
        index = bisect_right(self.starts, timestamp) - 1
        return self.pricers[index] if index >= 0 else None


class _CompiledEntry:
    """One entry's versions, one timeline per region: a region sees its own versions and those for every region."""

    __slots__ = ("entry", "pricers", "timelines")

    def __init__(self, entry: ModelEntry, calendars: Mapping[str, list[date]], cny_per_usd: Decimal | None) -> None:
        pricers = [VersionPricer(entry, version, calendars, cny_per_usd) for version in entry.prices]
        shared = [pricer for pricer in pricers if pricer.version.region is None]
        self.entry = entry
        self.pricers = _Timeline(pricers).pricers
        self.timelines: dict[str | None, _Timeline] = {None: _Timeline(shared)}
        for region in {pricer.version.region for pricer in pricers} - {None}:
            self.timelines[region] = _Timeline(shared + [p for p in pricers if p.version.region == region])

    def pricer_at(self, timestamp: float, region: str | None = None) -> VersionPricer | None:
        """A deployment whose region has no versions of its own (or is not known) sees the shared ones only."""
        timeline = self.timelines.get(region) if region is not None else None
        return (timeline or self.timelines[None]).at(timestamp)


def _start_key(pricer: VersionPricer) -> float:
    return _NEG_INF if pricer.starts is None else pricer.starts.timestamp()


class Catalog:
    """Dated prices and model facts per provider kind (deepseek, qwen, kimi, glm, openai, anthropic, vllm, ...)."""

    def __init__(self, sources: Sequence[SourceData], cny_per_usd: Decimal | None = None) -> None:
        self.cny_per_usd = cny_per_usd
        self.calendars = _merge_calendars(sources)
        merged: dict[tuple[str, str], ModelEntry] = {}
        for source in sources:
            for entry in source.entries:
                merged.pop((entry.provider, entry.model), None)  # re-insert: an override moves to the end
                merged[(entry.provider, entry.model)] = entry
        _check_calendars(merged.values(), self.calendars)
        self._entries = list(merged.values())
        self._index: dict[str, dict[str, _CompiledEntry]] = {}
        for entry in self._entries:
            self._add(_CompiledEntry(entry, self.calendars, cny_per_usd))

    @classmethod
    def load(cls, overrides: Sequence[Mapping] = (), files: Sequence[Path] = (),
             cny_per_usd: Decimal | int | float | str | None = None, include_builtin: bool = True) -> "Catalog":
        """Built-in data, then each file, then the config overrides; later entries win by (provider, model).
        cny_per_usd is taken as the config or command line gives it (a number or its text) and checked here."""
        sources = builtin_sources() if include_builtin else []
        sources += [file_source(Path(path)) for path in files]
        if overrides:
            sources.append(override_source(overrides))
        return cls(sources, _rate(cny_per_usd))

    @classmethod
    def from_config_section(cls, section: Mapping | Sequence | object | None) -> "Catalog":
        """The gateway's hook. Pass the loaded tollway.yaml mapping (or the Config model): its `catalog`
        list and `cny_per_usd` are read. A bare `catalog` list works too; None gives the built-in catalog."""
        if section is None:
            return cls.load()
        if isinstance(section, Mapping):
            return cls.load(overrides=section.get("catalog") or (), cny_per_usd=section.get("cny_per_usd"))
        if isinstance(section, Sequence) and not isinstance(section, (str, bytes)):
            return cls.load(overrides=section)
        if hasattr(section, "catalog") or hasattr(section, "cny_per_usd"):
            return cls.load(overrides=getattr(section, "catalog", None) or (),
                            cny_per_usd=getattr(section, "cny_per_usd", None))
        raise CatalogError(f"catalog config: expected a mapping with `catalog` and `cny_per_usd`, or a list of "
                           f"entries (got {type(section).__name__})")

    def price(self, provider: str, model: str, at: datetime, prompt_tokens: int = 0,
              tier: str = "standard", region: str | None = None) -> Price | None:
        """The rate in force at `at` (naive = UTC) for a request with this prompt length on this service tier,
        served in `region` (None = not known: only versions that name no region apply).

        None when the model is unknown, `at` is before its first known price, or it has no such tier.
        """
        if tier not in SERVICE_TIERS:
            raise ValueError(f"tier {tier!r} is not one of {', '.join(SERVICE_TIERS)}")
        compiled = self._lookup(provider, model)
        if compiled is None:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        pricer = compiled.pricer_at(at.timestamp(), region)
        return None if pricer is None else pricer.price(at, prompt_tokens, tier)

    def history(self, provider: str, model: str) -> list[tuple[PriceVersion, Price]]:
        """Every version of a model, oldest first, with its base price (standard tier, peak hours,
        shortest prompt tier). Empty if the model is unknown."""
        compiled = self._lookup(provider, model)
        if compiled is None:
            return []
        return [(pricer.version, pricer.table[(0, False, "standard")]) for pricer in compiled.pricers]

    def entry(self, provider: str, model: str) -> ModelEntry | None:
        """The entry for a model name or alias (or the provider's `*` entry for self-hosted servers)."""
        compiled = self._lookup(provider, model)
        return None if compiled is None else compiled.entry

    def entries(self) -> list[ModelEntry]:
        """Every entry after overrides, built-in ones first in file order."""
        return list(self._entries)

    def _lookup(self, provider: str, model: str) -> _CompiledEntry | None:
        names = self._index.get(provider)
        if names is None:
            return None
        found = names.get(model)
        if found is None:
            undated = _SNAPSHOT_SUFFIX.sub("", model)  # claude-sonnet-4-5-20250929, gpt-4.1-2025-04-14
            found = names.get(undated) if undated != model else None
        return found or names.get(WILDCARD_MODEL)

    def _add(self, compiled: _CompiledEntry) -> None:
        names = self._index.setdefault(compiled.entry.provider, {})
        for alias in compiled.entry.aliases:
            owner = names.get(alias)
            if owner is None or owner.entry.model != alias:  # a real model name beats someone's alias
                names[alias] = compiled
        names[compiled.entry.model] = compiled


def _merge_calendars(sources: Sequence[SourceData]) -> dict[str, list[date]]:
    calendars: dict[str, set[date]] = {}
    for source in sources:
        for name, days in source.holidays.items():
            calendars.setdefault(name, set()).update(days)
    return {name: sorted(days) for name, days in calendars.items()}


def _check_calendars(entries, calendars: Mapping[str, list[date]]) -> None:
    for entry in entries:
        for index, version in enumerate(entry.prices):
            name = version.peak_hours.calendar if version.peak_hours else None
            if name is not None and name not in calendars:
                known = ", ".join(sorted(calendars)) or "none"
                raise CatalogError(f"{entry.provider}/{entry.model}: prices[{index}].peak_hours.calendar: "
                                   f"no holiday calendar named {name!r} (known: {known})")


def _rate(value: object) -> Decimal | None:
    """cny_per_usd as an exact positive Decimal."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise CatalogError(f"cny_per_usd: {value!r} is not a number")
    try:
        rate = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise CatalogError(f"cny_per_usd: {value!r} is not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise CatalogError(f"cny_per_usd: must be a positive number (got {value})")
    return rate

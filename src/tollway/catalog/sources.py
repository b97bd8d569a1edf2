"""Reading catalog data: the built-in YAML files, user files and the config's `catalog:` list.

Each source becomes a list of validated ModelEntry objects plus holiday calendars, in the order they
override each other. Validation happens here, once, with errors that name the file and key path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from tollway.catalog.errors import CatalogError, from_validation_error
from tollway.catalog.schema import CalendarAddition, CalendarFile, ModelEntry, ProviderFile

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CALENDARS_FILE = "calendars.yaml"


@dataclass
class SourceData:
    """What one source contributes, with a label for error messages."""

    origin: str
    entries: list[ModelEntry] = field(default_factory=list)
    holidays: dict[str, list[date]] = field(default_factory=dict)


def builtin_sources() -> list[SourceData]:
    """The shipped catalog (src/tollway/catalog/data), parsed once per process."""
    return list(_builtin_cached())


@lru_cache(maxsize=1)
def _builtin_cached() -> tuple[SourceData, ...]:
    data_dir = resources.files("tollway.catalog") / "data"
    names = sorted(item.name for item in data_dir.iterdir() if item.name.endswith(".yaml"))
    return tuple(parse_document(f"built-in catalog {name}", yaml.load(data_dir.joinpath(name).read_text("utf-8"),
                                                                       Loader=_Loader)) for name in names)


def file_source(path: Path) -> SourceData:
    """A user catalog file in the built-in format (provider + models, or calendars, or a list of entries)."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog file ({exc.strerror or exc})") from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML ({exc})") from None
    return parse_document(str(path), document)


def override_source(items: Sequence[Mapping], origin: str = "config catalog") -> SourceData:
    """The user's `catalog:` list: model entries (same schema as built-in ones) or holiday additions."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise CatalogError(f"{origin}: must be a list of entries (got {type(items).__name__})")
    return _entry_list(origin, "catalog", items)


def parse_document(origin: str, document: object) -> SourceData:
    if isinstance(document, list):
        return _entry_list(origin, "", document)
    if not isinstance(document, Mapping):
        raise CatalogError(f"{origin}: expected a mapping with provider and models, or calendars "
                           f"(got {type(document).__name__})")
    if "calendars" in document:
        try:
            calendars = CalendarFile.model_validate(document)
        except ValidationError as exc:
            raise from_validation_error(origin, exc) from None
        return SourceData(origin, holidays={name: list(cal.holidays) for name, cal in calendars.calendars.items()})
    try:
        provider_file = ProviderFile.model_validate(document)
    except ValidationError as exc:
        raise from_validation_error(origin, exc) from None
    source = SourceData(origin)
    for index, item in enumerate(provider_file.models):
        where = f"models[{index}]"
        if item.get("provider", provider_file.provider) != provider_file.provider:
            raise CatalogError(f"{origin}: {where}.provider: {item['provider']!r} differs from the file's "
                               f"provider {provider_file.provider!r}")
        source.entries.append(_entry(origin, where, {**item, "provider": provider_file.provider}))
    _reject_duplicates(source)
    return source


def _entry_list(origin: str, prefix: str, items: Sequence[object]) -> SourceData:
    source = SourceData(origin)
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]"
        if not isinstance(item, Mapping):
            raise CatalogError(f"{origin}: {where}: expected a mapping (got {type(item).__name__})")
        if "calendar" in item:
            try:
                addition = CalendarAddition.model_validate(item)
            except ValidationError as exc:
                raise from_validation_error(origin, exc, where) from None
            source.holidays.setdefault(addition.calendar, []).extend(addition.holidays)
        else:
            source.entries.append(_entry(origin, where, item))
    _reject_duplicates(source)
    return source


def _entry(origin: str, where: str, item: Mapping) -> ModelEntry:
    try:
        return ModelEntry.model_validate(dict(item))
    except ValidationError as exc:
        raise from_validation_error(origin, exc, where) from None


def _reject_duplicates(source: SourceData) -> None:
    """Within one source a (provider, model) or alias may appear once; across sources, later ones win."""
    seen: dict[tuple[str, str], str] = {}
    for entry in source.entries:
        for name in (entry.model, *entry.aliases):
            key = (entry.provider, name)
            if key in seen:
                raise CatalogError(f"{source.origin}: {entry.provider}/{name} is defined twice "
                                   f"(by {seen[key]} and {entry.model}); each name may appear once per source")
            seen[key] = entry.model

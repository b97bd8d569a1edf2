"""`tollway catalog`: show the price catalog as a table or JSON.

Without --at it lists every dated version of every model (the catalog as data, with its rules spelled
out); with --at it shows the one price each model had at that moment, peak/off-peak and tiers resolved.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import click
import yaml
from rich.table import Table

from tollway.catalog.errors import CatalogError
from tollway.catalog.peak_hours import PeakRule
from tollway.catalog.pricing import START_UNKNOWN, Price
from tollway.catalog.schema import SERVICE_TIERS, ModelEntry, PriceVersion
from tollway.catalog.store import Catalog
from tollway.terminal.console import output_console

_SIX_PLACES = Decimal("0.000001")


@click.command(name="catalog")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--provider", "providers", multiple=True, help="Only this provider kind (repeatable).")
@click.option("--model", "models", multiple=True, help="Only this model name or alias (repeatable).")
@click.option("--at", "at_text", help="Show the price in force at this time, e.g. 2026-11-22T10:00+08:00 (naive = UTC).")
@click.option("--tier", type=click.Choice(SERVICE_TIERS), default="standard", show_default=True,
              help="Service tier for --at.")
@click.option("--prompt-tokens", type=click.IntRange(min=0), default=0, show_default=True,
              help="Prompt length for --at (selects input-length tiers).")
@click.option("--region", help="Provider region for --at (e.g. cn-beijing, ap-southeast-1); default: not known, "
                               "so only prices that name no region apply.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="tollway.yaml whose `catalog:` entries and `cny_per_usd` apply.")
@click.option("--cny-per-usd", type=str, help="Convert CNY prices at this rate (overrides the config).")
def catalog(as_json: bool, providers: tuple[str, ...], models: tuple[str, ...], at_text: str | None, tier: str,
            prompt_tokens: int, region: str | None, config_path: Path | None, cny_per_usd: str | None) -> None:
    """Show the price catalog: dated prices per provider and model, USD per million tokens."""
    try:
        cat = _load(config_path, cny_per_usd)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    entries = [entry for entry in cat.entries() if _selected(cat, entry, providers, models)]
    if at_text is None:
        history = [(entry, version, price) for entry in entries
                   for version, price in cat.history(entry.provider, entry.model)]
        if as_json:
            click.echo(json.dumps([_entry_json(cat, entry) for entry in entries], indent=2, ensure_ascii=False))
        else:
            _print_table([_history_row(entry, version, price) for entry, version, price in history], "every version")
        return
    at = _parse_at(at_text)
    resolved = [(entry, cat.price(entry.provider, entry.model, at, prompt_tokens, tier, region)) for entry in entries]
    if as_json:
        click.echo(json.dumps([price.as_json() if price else {"provider": entry.provider, "model": entry.model,
                                                             "price": None} for entry, price in resolved],
                              indent=2, ensure_ascii=False))
        return
    rows = [_price_row(entry, price) for entry, price in resolved]
    where = f", region {region}" if region else ""
    _print_table(rows, f"in force at {at.isoformat()} ({tier}, prompt {prompt_tokens} tokens{where})")


def _load(config_path: Path | None, cny_per_usd: str | None) -> Catalog:
    section: dict = {}
    if config_path is not None:
        section = _read_config(config_path)
    if cny_per_usd is not None:
        try:
            Catalog.load(include_builtin=False, cny_per_usd=cny_per_usd)
        except CatalogError as exc:
            raise CatalogError(f"--cny-per-usd: {exc}") from None
        section["cny_per_usd"] = cny_per_usd
    try:
        return Catalog.from_config_section(section)
    except CatalogError as exc:
        raise CatalogError(f"{config_path}: {exc}" if config_path else str(exc)) from None


def _read_config(path: Path) -> dict:
    """Only `catalog:` and `cny_per_usd` matter here; the rest of tollway.yaml is the gateway's business."""
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML ({exc})") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CatalogError(f"{path}: expected a mapping at the top level")
    return {key: document[key] for key in ("catalog", "cny_per_usd") if key in document}


def _parse_at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date-time such as 2026-11-22T10:00+08:00",
                                 param_hint="--at") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _selected(cat: Catalog, entry: ModelEntry, providers: tuple[str, ...], models: tuple[str, ...]) -> bool:
    if providers and entry.provider not in providers:
        return False
    if not models:
        return True
    return any(cat.entry(entry.provider, name) is entry for name in models)


def _money(value: Decimal | None) -> str:
    if value is None or value.is_nan():
        return "unknown"
    if value == value.quantize(_SIX_PLACES):
        return format(value.normalize(), "f")
    return "≈" + format(value.quantize(_SIX_PLACES).normalize(), "f")


def _currency(price: Price) -> str:
    if price.original is None:
        return price.currency
    amounts = " / ".join(_money(price.original.get(name)) for name in ("input", "cached_input", "output"))
    return f"{price.currency} {amounts}"


def _effective(price: Price) -> str:
    if price.effective_at is None or price.effective_from == START_UNKNOWN:
        return "start unknown"
    at = price.effective_at
    return at.date().isoformat() if (at.hour, at.minute) == (0, 0) else at.strftime("%Y-%m-%d %H:%MZ")


def _rates(price: Price) -> list[str]:
    return [_money(price.input), _money(price.cached_input), _money(price.cache_write), _money(price.output)]


def _history_row(entry: ModelEntry, version: PriceVersion, price: Price) -> list[str]:
    notes = [*_rule_notes(version), version.note]
    return [entry.provider, _name(entry), *_rates(price), _currency(price), _effective(price),
            _provenance(version.source, version.verified), "; ".join(note for note in notes if note)]


def _price_row(entry: ModelEntry, price: Price | None) -> list[str]:
    if price is None:
        return [entry.provider, _name(entry), "-", "-", "-", "-", "-", "-", "-", "no price at this time/tier"]
    return [entry.provider, _name(entry), *_rates(price), _currency(price), _effective(price),
            _provenance(price.source, price.verified), price.note]


def _name(entry: ModelEntry) -> str:
    return entry.model if not entry.aliases else f"{entry.model} ({', '.join(entry.aliases)})"


def _provenance(source: str, verified: bool) -> str:
    """A short provenance for the table (the host of the first URL); --json carries the full source."""
    words = source.split()
    url = next((w for w in words if "://" in w), None)
    short = urlsplit(url).netloc if url else (source if len(source) <= 24 else source[:23] + "…")
    return f"{'✓' if verified else '✗'} {short}"


def _rule_notes(version: PriceVersion) -> list[str]:
    """The version's rules in words: off-peak, prompt tiers, service tiers."""
    notes = [f"region {version.region}"] if version.region else []
    if "explicit_cached_input" in version.given() or version.ratios.explicit_cached_input is not None:
        rate = version.explicit_cached_input if "explicit_cached_input" in version.given() else \
            f"x{version.ratios.explicit_cached_input}"
        notes.append(f"explicit-cache hit {rate if isinstance(rate, str) else _money(rate)}")
    if version.peak_hours is not None and version.off_peak is not None:
        off = version.off_peak
        how = f"x{off.factor}" if "factor" in off.model_fields_set else \
            f"in {_money(off.input)} / out {_money(off.output)}"
        notes.append(f"{PeakRule(version.peak_hours).description}; off-peak {how}")
    for tier in version.prompt_tiers:
        notes.append(f"prompt > {tier.above}: in {_money(tier.input)} / out {_money(tier.output)} (whole request)")
    for name, spec in version.service_tiers.items():
        how = f"x{spec.factor}" if "factor" in spec.model_fields_set else \
            f"in {_money(spec.input)} / out {_money(spec.output)}"
        notes.append(f"{name} {how}")
    if version.currency != "USD":
        notes.append(f"rates in {version.currency}")
    return notes


def _entry_json(cat: Catalog, entry: ModelEntry) -> dict:
    data = entry.model_dump(mode="json", exclude_unset=True)
    data["resolved_usd"] = [price.as_json() for _, price in cat.history(entry.provider, entry.model)]
    return data


def _print_table(rows: list[list[str]], caption: str) -> None:
    table = Table(title="tollway price catalog (USD per 1M tokens; ✗ = unverified source, see --json)",
                  caption=caption, show_lines=False)
    for header in ("provider", "model", "input", "cached", "cache write", "output", "currency",
                   "effective", "source", "notes"):
        numeric = header in ("input", "cached", "cache write", "output")
        table.add_column(header, overflow="fold", no_wrap=numeric or header in ("provider", "effective"),
                         justify="right" if numeric else "left", max_width=32 if header == "model" else None,
                         min_width=90 if header == "notes" else None)
    for row in rows:
        table.add_row(*row)
    output_console().print(table)

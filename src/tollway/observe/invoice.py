"""Reading a provider's invoice or usage export (CSV) into exact daily cost per model.

Every provider's export names its columns differently, so columns are found by common names (a date,
a model, a cost, optionally input/output tokens and a currency) and can be named explicitly. Amounts
are parsed as Decimal after dropping currency signs and thousands separators; a CNY export is
converted once per line with the given CNY-per-USD rate. Every error names the file, the line and the
column.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

DATE_NAMES = ("date", "day", "usage_date", "billing_date", "usage_day", "start_date", "period", "time")
MODEL_NAMES = ("model", "model_name", "model_id", "product", "sku", "item")
COST_NAMES = ("cost_usd", "amount_usd", "cost", "amount", "total_cost", "total_amount", "spend", "total", "charge")
INPUT_NAMES = ("input_tokens", "prompt_tokens", "tokens_in", "input")
OUTPUT_NAMES = ("output_tokens", "completion_tokens", "tokens_out", "output")
CURRENCY_NAMES = ("currency", "currency_code")
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")


class InvoiceError(Exception):
    """The export cannot be read; the message names the file, line and column."""


@dataclass
class InvoiceLine:
    day: str
    model: str
    cost_usd: Decimal
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class Columns:
    date: str | None = None
    model: str | None = None
    cost: str | None = None


def read_invoice(path: Path, columns: Columns = Columns(), currency: str | None = None,
                 cny_per_usd: Decimal | None = None, model_map: dict[str, str] | None = None) -> list[InvoiceLine]:
    """One InvoiceLine per (day, model), summed over the export's lines."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvoiceError(f"{path}: cannot read the invoice: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    found = _find_columns(path, header, columns)
    totals: dict[tuple[str, str], InvoiceLine] = {}
    for number, record in enumerate(reader, start=2):
        line = _parse_line(path, number, record, found, currency, cny_per_usd, model_map or {})
        if line is None:
            continue
        key = (line.day, line.model)
        if key in totals:
            _merge(totals[key], line)
        else:
            totals[key] = line
    if not totals:
        raise InvoiceError(f"{path}: no invoice lines found")
    return sorted(totals.values(), key=lambda l: (l.day, l.model))


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-()]+", "_", name.strip().lower()).strip("_")


def _find_columns(path: Path, header: Sequence[str], given: Columns) -> dict[str, str | None]:
    by_name = {_normalise(h): h for h in header}

    def pick(what: str, explicit: str | None, names: tuple[str, ...], required: bool) -> str | None:
        if explicit is not None:
            if explicit not in header:
                raise InvoiceError(f"{path}: no column {explicit!r} (--{what}-column); columns: {', '.join(header)}")
            return explicit
        for name in names:
            if name in by_name:
                return by_name[name]
        if required:
            raise InvoiceError(f"{path}: cannot find the {what} column (looked for {', '.join(names)}); name it "
                               f"with --{what}-column. Columns: {', '.join(header)}")
        return None

    return {"date": pick("date", given.date, DATE_NAMES, True), "model": pick("model", given.model, MODEL_NAMES, True),
            "cost": pick("cost", given.cost, COST_NAMES, True), "input": pick("input", None, INPUT_NAMES, False),
            "output": pick("output", None, OUTPUT_NAMES, False),
            "currency": pick("currency", None, CURRENCY_NAMES, False)}


def _parse_line(path: Path, number: int, record: dict, found: dict[str, str | None], currency: str | None,
                cny_per_usd: Decimal | None, model_map: dict[str, str]) -> InvoiceLine | None:
    raw_model = (record.get(found["model"]) or "").strip()
    raw_day = (record.get(found["date"]) or "").strip()
    if not raw_model and not raw_day:
        return None  # blank line or a footer
    where = f"{path}, line {number}"
    match = _DATE.match(raw_day)
    if match is None:
        raise InvoiceError(f"{where}, column {found['date']}: {raw_day!r} is not a date (YYYY-MM-DD)")
    day = f"{int(match[1]):04d}-{int(match[2]):02d}-{int(match[3]):02d}"
    cost = _amount(record.get(found["cost"]), f"{where}, column {found['cost']}")
    line_currency = (record.get(found["currency"]) or "").strip().upper() if found["currency"] else ""
    line_currency = line_currency or (currency or "USD").upper()
    if line_currency in ("CNY", "RMB"):
        if cny_per_usd is None:
            raise InvoiceError(f"{where}: amounts are in CNY; give --cny-per-usd (or cny_per_usd in the config)")
        cost = cost / cny_per_usd
    elif line_currency != "USD":
        raise InvoiceError(f"{where}: currency {line_currency!r} is not supported (USD or CNY)")
    model = model_map.get(raw_model, raw_model)
    return InvoiceLine(day, model, cost, _tokens(record, found["input"], where), _tokens(record, found["output"], where))


def _amount(value: str | None, where: str) -> Decimal:
    text = re.sub(r"[,\s$¥￥]|USD|CNY|RMB", "", value or "")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise InvoiceError(f"{where}: {value!r} is not an amount") from None


def _tokens(record: dict, column: str | None, where: str) -> int | None:
    if column is None or not (record.get(column) or "").strip():
        return None
    text = record[column].replace(",", "").strip()
    if not text.isdigit():
        raise InvoiceError(f"{where}, column {column}: {record[column]!r} is not a token count")
    return int(text)


def _merge(into: InvoiceLine, line: InvoiceLine) -> None:
    into.cost_usd += line.cost_usd
    for name in ("input_tokens", "output_tokens"):
        add = getattr(line, name)
        if add is not None:
            setattr(into, name, (getattr(into, name) or 0) + add)

"""Ledger against invoice, by day and model: where do they disagree by more than the tolerance?

The ledger side counts every row that sent tokens to the provider in the invoice's days, whatever the
request's status and including shadow copies, because the provider bills them all. Days are taken in
the invoice's time zone (`--tz`; DeepSeek, Qwen, Kimi and GLM bill in China time). A line is flagged when
the two costs differ by more than max(tolerance_usd, tolerance x the larger of the two), or when one side
has spend the other lacks: spend missing from the ledger means traffic that did not go through tollway
(or a lost row); spend missing from the invoice means the provider has not billed it yet, or a wrong
price in tollway's catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from tollway.ledger.schema import LedgerRow
from tollway.observe.invoice import InvoiceLine


@dataclass
class DayModel:
    day: str
    model: str
    ledger_cost_usd: Decimal = Decimal(0)
    invoice_cost_usd: Decimal | None = None
    ledger_requests: int = 0
    ledger_input_tokens: int = 0
    ledger_output_tokens: int = 0
    invoice_input_tokens: int | None = None
    invoice_output_tokens: int | None = None
    status: str = "ok"  # ok | gap | missing_in_ledger | missing_in_invoice

    @property
    def difference_usd(self) -> Decimal:
        """Invoice minus ledger: positive when the provider billed more than tollway counted."""
        return (self.invoice_cost_usd or Decimal(0)) - self.ledger_cost_usd

    def to_json(self) -> dict[str, object]:
        return {"day": self.day, "model": self.model, "status": self.status,
                "ledger_cost_usd": f"{self.ledger_cost_usd:f}",
                "invoice_cost_usd": None if self.invoice_cost_usd is None else f"{self.invoice_cost_usd:f}",
                "difference_usd": f"{self.difference_usd:f}", "ledger_requests": self.ledger_requests,
                "ledger_input_tokens": self.ledger_input_tokens, "ledger_output_tokens": self.ledger_output_tokens,
                "invoice_input_tokens": self.invoice_input_tokens, "invoice_output_tokens": self.invoice_output_tokens}


@dataclass(frozen=True)
class Tolerance:
    usd: Decimal = Decimal("0.01")
    relative: Decimal = Decimal("0.02")

    def exceeded(self, a: Decimal, b: Decimal) -> bool:
        return abs(a - b) > max(self.usd, self.relative * max(abs(a), abs(b)))


def reconcile(rows: Iterable[LedgerRow], invoice: list[InvoiceLine], tz: ZoneInfo, tolerance: Tolerance,
              provider: str | None = None) -> list[DayModel]:
    days = {line.day for line in invoice}
    lines: dict[tuple[str, str], DayModel] = {}
    for line in invoice:
        entry = lines.setdefault((line.day, line.model.lower()), DayModel(line.day, line.model))
        entry.invoice_cost_usd = line.cost_usd
        entry.invoice_input_tokens, entry.invoice_output_tokens = line.input_tokens, line.output_tokens
    for row in rows:
        if provider is not None and row.provider != provider:
            continue
        if not row.upstream_model or not (row.prompt_tokens or row.completion_tokens or Decimal(row.cost_usd)):
            continue
        day = datetime.fromisoformat(row.ts).astimezone(tz).date().isoformat()
        if day not in days:
            continue
        entry = lines.setdefault((day, row.upstream_model.lower()), DayModel(day, row.upstream_model))
        entry.ledger_cost_usd += Decimal(row.cost_usd)
        entry.ledger_requests += 1
        entry.ledger_input_tokens += row.prompt_tokens
        entry.ledger_output_tokens += row.completion_tokens
    for entry in lines.values():
        entry.status = _status(entry, tolerance)
    return sorted(lines.values(), key=lambda e: (e.day, e.model))


def _status(entry: DayModel, tolerance: Tolerance) -> str:
    if entry.invoice_cost_usd is None:
        return "missing_in_invoice" if tolerance.exceeded(entry.ledger_cost_usd, Decimal(0)) else "ok"
    if entry.ledger_requests == 0:
        return "missing_in_ledger" if tolerance.exceeded(entry.invoice_cost_usd, Decimal(0)) else "ok"
    if tolerance.exceeded(entry.ledger_cost_usd, entry.invoice_cost_usd):
        return "gap"
    for ledger, billed in ((entry.ledger_input_tokens, entry.invoice_input_tokens),
                           (entry.ledger_output_tokens, entry.invoice_output_tokens)):
        if billed is not None and abs(ledger - billed) > tolerance.relative * max(ledger, billed):
            return "gap"
    return "ok"

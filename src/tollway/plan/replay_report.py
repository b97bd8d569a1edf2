"""A replay as data: the JSON document (`--json`, with `--rows` each decision) and CSV (`--csv`).

Money is an exact decimal string everywhere here, so a spreadsheet or a script can re-add it and get
the same total; the terminal table (replay_table.py) is the only place amounts are rounded.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollway.plan.replay_decisions import UNSERVEABLE_REASONS, RowDecision
from tollway.plan.replay_totals import ReplayTotals, Tally, reasons

SCHEMA = "tollway.replay/v1"
SUMMARY_FIELDS = ("split", "key", "requests", "served", "compared", "current_usd", "compared_current_usd",
                  "candidate_usd", "difference_usd", *(f"unserveable_{r}" for r in UNSERVEABLE_REASONS),
                  "unpriced", "current_unpriced", "approximate")
ROW_FIELDS = ("id", "ts", "requested_model", "route_group", "current_deployment", "current_cost_usd",
              "candidate_deployments", "candidate_cost_usd", "unserveable", "detail", "approximate")


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """What was replayed against what, for the report's heading."""

    candidate: str
    ledger: str
    since: datetime | None
    until: datetime | None
    include_failed: bool


def usd(amount: Decimal | None) -> str | None:
    """Exact, canonical dollars: no exponent, no trailing zeros ("0", "0.0000123")."""
    return None if amount is None else f"{amount.normalize():f}"


def tally_dict(line: Tally) -> dict[str, Any]:
    return {
        "requests": line.requests, "served": line.served, "compared": line.compared,
        "current_usd": usd(line.current_usd), "compared_current_usd": usd(line.compared_current_usd),
        "candidate_usd": usd(line.candidate_usd), "difference_usd": usd(line.difference_usd),
        "unserveable": reasons(line), "unpriced": line.unpriced, "current_unpriced": line.current_unpriced,
        "approximate": line.approximate,
    }


def replay_dict(totals: ReplayTotals, source: ReplaySource) -> dict[str, Any]:
    """The whole replay as a JSON-ready dict (schema tollway.replay/v1)."""
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "candidate": source.candidate,
        "ledger": source.ledger,
        "window": {"since": _iso(source.since), "until": _iso(source.until)},
        "include_failed": source.include_failed,
        "total": tally_dict(totals.total),
        "by_group": {name: tally_dict(line) for name, line in sorted(totals.by_group.items())},
        "by_day": {day: tally_dict(line) for day, line in sorted(totals.by_day.items())},
        "rows_without_features": totals.without_features,
        "notes": totals.notes,
    }
    if totals.decisions is not None:
        document["rows"] = [decision_dict(d) for d in totals.decisions]
    return document


def decision_dict(decision: RowDecision) -> dict[str, Any]:
    request = decision.request
    return {
        "id": request.id, "ts": request.ts.isoformat(), "requested_model": request.requested_model,
        "route_group": decision.group,
        "current": {"deployment": request.deployment, "cost_usd": usd(request.cost_usd), "priced": request.priced},
        "candidate": {"deployments": [{"deployment": a.deployment, "share": usd(a.share), "cost_usd": usd(a.cost_usd)}
                                      for a in decision.arms],
                      "cost_usd": usd(decision.cost_usd),
                      "route": decision.detail if decision.unserveable is None else None},
        "unserveable": None if decision.unserveable is None else {"reason": decision.unserveable,
                                                                  "detail": decision.detail},
        "approximate": decision.approximate,
    }


def summary_csv(totals: ReplayTotals) -> str:
    """One line for the total, one per route group, one per day."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUMMARY_FIELDS)
    lines = [("total", "", totals.total)]
    lines += [("group", name, line) for name, line in sorted(totals.by_group.items())]
    lines += [("day", day, line) for day, line in sorted(totals.by_day.items())]
    for split, key, line in lines:
        data = tally_dict(line)
        writer.writerow([split, key, line.requests, line.served, line.compared, data["current_usd"],
                         data["compared_current_usd"], data["candidate_usd"], data["difference_usd"],
                         *reasons(line).values(), line.unpriced, line.current_unpriced, line.approximate])
    return out.getvalue()


def rows_csv(decisions: list[RowDecision]) -> str:
    """One line per replayed request; weighted arms read `arm-a:0.9;arm-b:0.1`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROW_FIELDS)
    for d in decisions:
        request = d.request
        arms = ";".join(a.deployment if len(d.arms) == 1 else f"{a.deployment}:{usd(a.share)}" for a in d.arms)
        writer.writerow([request.id, request.ts.isoformat(), request.requested_model, d.group, request.deployment,
                         usd(request.cost_usd) if request.priced else "", arms, usd(d.cost_usd) or "",
                         d.unserveable or "", d.detail, d.approximate or ""])
    return out.getvalue()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()

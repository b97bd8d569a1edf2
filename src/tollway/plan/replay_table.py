"""A replay in the terminal: the answer first, then the split by route group and by day.

Amounts are shown as everywhere in tollway (money_text: cents, or three significant digits below a cent);
--json and --csv carry the exact figures.
"""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console

from tollway.core.money_text import usd_text
from tollway.plan.replay_report import ReplaySource
from tollway.plan.replay_totals import ReplayTotals, Tally, reasons
from tollway.terminal.tables import Column, TableSpec, print_fitted


def print_replay(totals: ReplayTotals, source: ReplaySource, console: Console, wide: bool = False) -> None:
    total = totals.total
    window = f" from {source.since.isoformat()}" if source.since else ""
    window += f" until {source.until.isoformat()}" if source.until else ""
    which = "all client requests" if source.include_failed else "answered client requests"
    console.print(f"Replayed {total.requests} {which} from {source.ledger}{window} under {source.candidate}.")
    if not total.requests:
        console.print("Nothing to replay: the ledger has no such requests in this window.")
        return
    console.print(headline(total))
    print_fitted(console, [_table("route group", totals.by_group), _table("day (UTC)", totals.by_day)], wide)
    for line in footnotes(totals):
        console.print(line)


def headline(total: Tally) -> str:
    """One sentence: what the candidate would have cost against today, and what it leaves out."""
    if not total.compared:
        return f"None of the {total.requests} requests can be compared ({_left_out(total)})."
    diff = total.difference_usd
    verb = "saved" if diff < 0 else "added" if diff > 0 else "changed"
    change = f" ({_percent(total)})" if total.compared_current_usd else ""
    text = (f"The candidate would have {verb} {usd_text(abs(diff))}{change}: {usd_text(total.candidate_usd)} "
            f"instead of {usd_text(total.compared_current_usd)} for the {total.compared} of {total.requests} "
            f"requests it can serve and price.")
    left_out = total.requests - total.compared
    if left_out:
        text += f" Not compared: {left_out} ({_left_out(total)})."
    return text


def footnotes(totals: ReplayTotals) -> list[str]:
    total = totals.total
    lines = [(f"All {total.requests} replayed requests cost {usd_text(total.current_usd)} as logged; "
              "current and candidate above cover the compared requests only.")]
    if totals.without_features:
        lines.append(f"{totals.without_features} rows were logged without request features (an older ledger): "
                     "replayed as needing no image, tool or JSON support and no residency.")
    if totals.total.approximate:
        lines.append(f"{totals.total.approximate} decisions are approximate (see --json --rows for why).")
    for group, notes in totals.notes.items():
        lines.append(f"{group}: " + "; ".join(notes) + ".")
    return lines


def _table(title: str, lines: dict[str, Tally]) -> TableSpec:
    """Key: the line, its requests and the three amounts; the change, counts and reasons while they fit."""
    table = TableSpec(f"by {title}", [
        Column(title, key=True, left=True, wrap=True), Column("requests", key=True), Column("compared", rank=2),
        Column("current", key=True), Column("candidate", key=True), Column("difference", key=True),
        Column("change", rank=1), Column("unserveable", left=True, phrase=True, rank=3),
        Column("unpriced", rank=4)])
    for key, line in sorted(lines.items()):
        unserveable = ", ".join(f"{n} {reason}" for reason, n in reasons(line).items() if n) or "-"
        table.add_row(key, str(line.requests), str(line.compared), usd_text(line.compared_current_usd),
                      usd_text(line.candidate_usd), _signed(line.difference_usd),
                      _percent(line) if line.compared_current_usd else "-", unserveable, str(line.unpriced or "-"))
    return table


def _left_out(total: Tally) -> str:
    parts = [f"{n} {reason}" for reason, n in reasons(total).items() if n]
    parts = [f"unserveable: {', '.join(parts)}"] if parts else []
    if total.unpriced:
        parts.append(f"{total.unpriced} without a candidate price")
    logged = total.served - total.unpriced - total.compared
    if logged:
        parts.append(f"{logged} without a logged cost")
    return "; ".join(parts)


def _signed(amount: Decimal) -> str:
    return ("+" if amount > 0 else "") + usd_text(amount)


def _percent(line: Tally) -> str:
    share = line.difference_usd / line.compared_current_usd * 100
    return f"{share:+.1f}%"

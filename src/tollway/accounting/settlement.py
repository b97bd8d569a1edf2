"""What settling a request tells the counters: its real tokens for each rate it was charged to (and the
deployment that really served it, when pacing charged another) and its real cost for each budget.

Both settle paths build it the same way: the shared counters (Redis) and the in-process ones.
"""

from __future__ import annotations

from tollway.accounting.counters.base import RateFix, Settlement, filled
from tollway.accounting.limits import RateLimits
from tollway.accounting.prepared_admission import warn_overspent
from tollway.accounting.tickets import Ticket
from tollway.ledger.schema import LedgerRow


def settlement(ticket: Ticket, row: LedgerRow, cost: int, limits: RateLimits) -> Settlement:
    """The settlement of `ticket` by its ledger `row`, costing `cost` nano-dollars."""
    tokens = row.prompt_tokens + row.completion_tokens
    fixes = [filled(RateFix, ("fix", check.subject, tokens)) for check in ticket.rates]
    served, paced = row.deployment, ticket.paced
    if paced:
        fixes.append(filled(RateFix, ("fix" if served == paced else "drop", limits.subject(paced), tokens)))
    if served and served != paced and limits.is_paced(served):
        fixes.append(filled(RateFix, ("add", limits.subject(served), tokens)))
    if ticket.budgets and cost > ticket.held_nano:
        warn_overspent(ticket, row)
    return Settlement(ticket.id, fixes, [(check.name, cost, check.expire_at_s) for check in ticket.budgets])

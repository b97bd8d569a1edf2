"""A batch's worst case, held against its key's budgets for as long as the batch has lines to send.

At creation the whole worst case (the sum of what each line would hold as a live request) is held in the
same counters admission uses (in process or Redis), so interactive traffic cannot spend what the batch
will need, and a batch that would overshoot a budget is refused with a 429 before anything is created.
Each line, when sent, takes its own hold through admission and settles its real cost like any request;
so the two are never counted twice, the batch's hold is first shrunk to what its unsent lines still need
(released and taken again, one line at a time under the executor's per-batch lock). Ticket ids are
`batch:<id>:<lines started>`, so after a restart the previous hold is released by name before a new
one is taken (in Redis it would otherwise linger until it expires).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tollway.accounting.counters.base import OK, AdmitRequest, Settlement
from tollway.accounting.counters.resilient import CountersUnavailable
from tollway.core.errors import GatewayError
from tollway.core.money import usd_text

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.accounting.keys.records import KeyRecord

log = logging.getLogger("tollway.batch")


def budget_refused(needed_nano: int, name: str, limit_nano: int, spent_nano: int, reserved_nano: int) -> GatewayError:
    window = name.split(":")[2] if name.count(":") >= 3 else "budget"
    return GatewayError(429, f"This batch could cost up to ${usd_text(needed_nano)} (every line at its worst case), "
                        f"more than remains of the {window} budget {name.rsplit(':', 1)[0]!r}: limit "
                        f"${usd_text(limit_nano)}, spent ${usd_text(spent_nano)}, held ${usd_text(reserved_nano)}. "
                        "Send fewer lines, set max_tokens on them, or raise the budget.",
                        "insufficient_quota", "budget_exceeded")


class BatchHolds:
    def __init__(self, admission: "Admission") -> None:
        self.admission = admission

    async def hold(self, record: "KeyRecord | None", ticket: str, nano: int, hold_ms: int, refuse: bool) -> bool:
        """Hold `nano` for the batch; with `refuse`, a GatewayError(429) when a budget cannot take it,
        else False (the lines then meet the budget one by one)."""
        checks = self.admission.budgets.key_checks(record, nano)
        if not checks or nano <= 0:
            return True
        request = AdmitRequest(ticket, "", [], checks, [], hold_ms)
        counters = self.admission.counters
        try:
            decision = counters.admit_in_process(request)
            if decision is None:
                decision, _ = await counters.admit(request)
        except CountersUnavailable as exc:
            if refuse:
                raise GatewayError(503, str(exc), "api_error", "limits_unavailable") from None
            return False
        if decision.outcome == OK:
            return True
        if not refuse:
            return False
        if decision.outcome == "budget" and decision.budgets:
            check, state = checks[decision.index], decision.budgets[0]
            raise budget_refused(nano, check.name, check.limit_nano, state.spent_nano, state.reserved_nano)
        raise GatewayError(429, f"The batch cannot be admitted now ({decision.outcome}).", "insufficient_quota",
                           "budget_exceeded")

    async def release(self, record: "KeyRecord | None", ticket: str) -> None:
        """Drop a hold taken by `hold` (nothing is spent: lines settle their own costs)."""
        checks = self.admission.budgets.key_checks(record, 0)
        if not checks:
            return
        settlement = Settlement(ticket, [], [(check.name, 0, check.expire_at_s) for check in checks])
        try:
            await self.admission.counters.settle(settlement, "redis" if self.admission.counters.shared else "local")
        except Exception:
            log.exception("releasing batch hold %s failed; it lapses when it expires", ticket)


def hold_ticket(batch_id: str, started: int) -> str:
    return f"batch:{batch_id}:{started}"

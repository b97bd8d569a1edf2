"""Whether accounting is keeping up, as /readyz, /metrics and the alerts see it.

A gateway that answers requests it cannot account for is worse than one that is down: the spend is real
and nobody sees it. So when accounting stops it must be loud. It has stopped when the writer task is being
restarted, when the database is unavailable and its rows cannot be spooled either, or when rows wait in
memory longer than `stall_after_s` without any flush moving them anywhere (database, spool or quarantine).
Rows in the spool are safe (fsync'd) and replayed later, so a database outage alone keeps the gateway
ready: it warns, but does not take every replica out of a load balancer at once.

Progress is noted by the writer after each flush, never on the request path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tollway.core.alerts import Alert

log = logging.getLogger("tollway.ledger")
STALL_AFTER_S = 10.0
QUARANTINE_ALERT_EVERY_S = 60.0


class LedgerHealth:
    def __init__(self, where: str, stall_after_s: float = STALL_AFTER_S) -> None:
        self.where = where  # the store, as messages may name it (never a password)
        self.stall_after_s = stall_after_s
        self.quarantined = 0
        self.restarts = 0
        self.progress_at = time.monotonic()
        self.writer_down: str | None = None    # why the writer task ended, until it runs again
        self.spool_error: str | None = None    # the database is unavailable and the spool cannot be written
        self.database_down: str | None = None  # the database is unavailable; rows go to the spool
        self.raise_alert: Callable[[Alert], None] | None = None  # the gateway's AlertCenter, once it runs
        self._stopped: str | None = None
        self._warned_down = False
        self._quarantine_reported = 0
        self._quarantine_alert_at = float("-inf")

    def progressed(self) -> None:
        self.progress_at = time.monotonic()

    def problem(self, waiting: int) -> str | None:
        """Why accounting is stopped or behind, in words fit for an unauthenticated /readyz; None if it is not."""
        if self.writer_down is not None:
            return f"ledger writer restarting after {self.writer_down}"
        if self.spool_error is not None:
            return f"ledger database unavailable and rows cannot be spooled ({self.spool_error})"
        stalled_s = time.monotonic() - self.progress_at
        if waiting and stalled_s > self.stall_after_s:
            return f"{waiting} ledger rows not written for {stalled_s:.0f} s"
        return None

    def check(self, waiting: int) -> None:
        """Raise or clear the alerts; called every second by the writer's watch task."""
        problem = self.problem(waiting)
        if problem is not None and self._stopped is None:
            log.error("ledger: accounting stopped at %s: %s", self.where, problem)
            self._alert("ledger_stopped", "critical", f"accounting stopped: {problem}",
                        f"Requests are being served but their ledger rows are not being stored ({self.where}). "
                        "Their spend is not in the ledger, the reports or reconciliation until this clears; "
                        "/readyz answers 503 meanwhile.", waiting)
        elif problem is None and self._stopped is not None:
            log.warning("ledger: accounting resumed at %s", self.where)
            self._alert("ledger_recovered", "info", "accounting resumed",
                        f"Ledger rows are being stored again ({self.where}); it had stopped: {self._stopped}", waiting)
        self._stopped = problem
        self._check_database()
        self._check_quarantine()

    def _check_database(self) -> None:
        if self.database_down is not None and not self._warned_down:
            self._alert("ledger_unavailable", "warning", "ledger database unavailable: rows are being spooled",
                        f"{self.where}: {self.database_down}. Rows are kept in the local spool and written when "
                        "the database answers again.", 0)
        self._warned_down = self.database_down is not None

    def _check_quarantine(self) -> None:
        new = self.quarantined - self._quarantine_reported
        now = time.monotonic()
        if new and now - self._quarantine_alert_at >= QUARANTINE_ALERT_EVERY_S:
            self._quarantine_reported, self._quarantine_alert_at = self.quarantined, now
            self._alert("ledger_quarantine", "warning", f"{new} ledger rows quarantined",
                        f"The ledger store ({self.where}) refused {new} rows; each is kept in its quarantine with "
                        "the reason (docs/budgets.md), and the rows after it were written.", new)

    def _alert(self, kind: str, severity: str, title: str, detail: str, count: int) -> None:
        if self.raise_alert is None:
            return
        try:
            self.raise_alert(Alert(kind=kind, title=title, detail=detail, scope="ledger", subject=self.where,
                                   value=str(count), severity=severity))
        except Exception:  # a failing alert sink must not stop the watch
            log.exception("ledger: could not raise the %s alert", kind)

"""An alert: what any part of tollway raises when something needs a person (a spend spike, a drift, a
ledger that cannot write). The type lives here so that low layers (the ledger writer) can raise one
without depending on the observer that delivers it (observe/alerts.py).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
KINDS = ("spend_anomaly", "threshold", "cost_drift", "output_drift", "fingerprint_change", "route_repointed",
         "ledger_stopped", "ledger_recovered", "ledger_unavailable", "ledger_quarantine")


@dataclass(slots=True)
class Alert:
    kind: str          # one of KINDS
    title: str         # one line for a pager
    detail: str        # what was seen against what was expected, and why it matters
    scope: str = ""    # key | route_group | deployment | provider | total | public_model
    subject: str = ""  # the key id, group, deployment ... the alert is about
    value: str = ""    # what was seen (exact decimal text)
    expected: str = ""  # the baseline or threshold it was compared with
    severity: str = "warning"
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def slack_payload(self) -> dict[str, Any]:
        """Slack's incoming-webhook shape (`text` + `attachments`); other receivers read `tollway`."""
        fields = [{"title": name, "value": value, "short": True}
                  for name, value in (("scope", f"{self.scope} {self.subject}".strip()), ("seen", self.value),
                                      ("expected", self.expected)) if value]
        return {
            "text": f":rotating_light: tollway {self.severity}: {self.title}",
            "attachments": [{"color": _COLOURS.get(self.severity, "#888888"), "text": self.detail,
                             "fields": fields, "footer": f"tollway alert {self.id} ({self.kind})", "ts": self.at}],
            "tollway": self.to_json(),
        }

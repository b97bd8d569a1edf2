"""An alert, and where it goes: the log, a metric, the webhook, the dashboard and (optionally) brownout.

Detectors (anomalies.py, drift.py, route_snapshot.py) decide *whether* something is wrong; this module
decides *who hears about it*, so every alert reaches every sink the same way.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from tollway.observe.metrics import GatewayMetrics

log = logging.getLogger("tollway.alerts")

KINDS = ("spend_anomaly", "threshold", "cost_drift", "output_drift", "fingerprint_change", "route_repointed",
         "ledger_stopped", "ledger_recovered", "ledger_unavailable", "ledger_quarantine")
_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}


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


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class AlertCenter:
    """Fans each alert out; keeps the latest for the dashboard."""

    def __init__(self, metrics: GatewayMetrics, keep_recent: int, webhook: AlertSink | None = None,
                 admission: object | None = None, brownout: bool = False) -> None:
        self.metrics = metrics
        self.recent: deque[Alert] = deque(maxlen=keep_recent)
        self.webhook = webhook
        self.admission = admission
        self.brownout = brownout

    def raise_alert(self, alert: Alert) -> None:
        log.warning("alert %s", orjson.dumps(alert.to_json()).decode(), extra={"event": {"alert": alert.to_json()}})
        self.metrics.count_alert(alert.kind, alert.severity)
        self.recent.appendleft(alert)
        if self.webhook is not None:
            self.webhook.send(alert)
        if self.brownout and alert.scope == "key" and alert.subject and alert.kind in ("spend_anomaly", "threshold"):
            self._brown_out(alert)

    def _brown_out(self, alert: Alert) -> None:
        brownout = getattr(self.admission, "brownout", None)
        if brownout is None:
            log.warning("alerts.brownout is on but admission has no brownout(); key %s keeps its routes",
                        alert.subject)
            return
        try:
            brownout(alert.subject, alert.title)
        except Exception as exc:  # never let a failed brownout stop the alert loop
            log.error("brownout of key %s failed: %s", alert.subject, type(exc).__name__)

"""An alert, and where it goes: the log, a metric, the webhook, the dashboard and (optionally) brownout.

Detectors (anomalies.py, drift.py, route_snapshot.py) decide *whether* something is wrong; this module
decides *who hears about it*, so every alert reaches every sink the same way.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

import orjson

from tollway.core.alerts import Alert

if TYPE_CHECKING:
    from tollway.observe.metrics import GatewayMetrics

log = logging.getLogger("tollway.alerts")

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

"""Config section `observe:`: metrics, logs, alerts and the dashboard."""

from __future__ import annotations

from tollway.config_base import Strict


class ObserveSettings(Strict):
    """Empty for now: metrics, alert and dashboard settings are added here."""

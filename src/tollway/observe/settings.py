"""Config section `observe:`: metrics, logs, traces, alerts, the webhook and the dashboard.

Every field has a default that is safe for production: metrics on, no prompt text anywhere, alerts on
with conservative thresholds, no webhook until one is named. See docs/observability.md for the reference.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from tollway.core.config_base import Strict
from tollway.observe.admin_ui.settings import AdminSettings as AdminSettings  # `admin:`, assembled by config.py

SCOPES = ("total", "key", "route_group", "deployment", "provider")
WINDOW_METRICS = ("cost_usd", "tokens", "requests", "errors")


class MetricsSettings(Strict):
    enabled: bool = Field(True, description="serve GET /metrics in Prometheus text format")
    token_env: str | None = Field(None, description="env var holding a token /metrics then requires "
                                                    "(Authorization: Bearer <token>); unset: /metrics is open")
    key_labels: bool = Field(False, description="also count requests, tokens and cost per virtual key")
    max_keys: int = Field(100, ge=1, description="keys beyond this many are counted under key_id=\"other\"")
    latency_buckets_s: list[float] = Field(
        default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
        min_length=1, description="upper bounds of the TTFT and total-latency histograms, seconds")

    @model_validator(mode="after")
    def _sorted(self) -> MetricsSettings:
        if sorted(self.latency_buckets_s) != self.latency_buckets_s or len(set(self.latency_buckets_s)) != len(self.latency_buckets_s):
            raise ValueError(f"latency_buckets_s must be strictly increasing (got {self.latency_buckets_s})")
        return self


class LogSettings(Strict):
    format: Literal["text", "json"] = Field("text", description="json: every log line is one JSON object")
    requests: bool = Field(False, description="one structured line per finished request (logger tollway.requests); "
                                              "off by default: the ledger has every request already")


class TracingSettings(Strict):
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; "
                                                        "needs the opentelemetry-sdk and -exporter-otlp-proto-http packages")
    service_name: str = "tollway"


BaselineScope = Literal["key", "route_group", "deployment"]


def _every_baseline_scope() -> list[BaselineScope]:
    return ["key", "route_group", "deployment"]


class BaselineSettings(Strict):
    """Relative alerts: the current window against what this hour of this weekday usually sees."""

    enabled: bool = True
    weeks: int = Field(4, ge=1, le=12, description="history kept and read back from the ledger at start")
    factor: Decimal = Field(Decimal(3), gt=1, description="alert when the window is above factor x its baseline")
    min_cost_usd: Decimal = Field(Decimal(1), ge=0, description="... and above it by at least this much spend")
    min_tokens: int = Field(1_000_000, ge=0, description="... or by at least this many tokens")
    min_history_hours: int = Field(24, ge=1, description="no relative alert until the ledger covers this many hours")
    scopes: list[BaselineScope] = Field(default_factory=_every_baseline_scope)


class ThresholdRule(Strict):
    """A fixed limit, e.g. {metric: tokens, above: 10000000, window_s: 300}: more than 10M tokens in 5 minutes."""

    metric: Literal["cost_usd", "tokens", "requests", "errors"]
    above: Decimal = Field(ge=0)
    window_s: float = Field(300, gt=0, le=86400)
    scope: Literal["total", "key", "route_group", "deployment", "provider"] = "total"
    name: str | None = Field(None, description="shown in the alert; default built from the rule")

    @property
    def label(self) -> str:
        return self.name or f"{self.metric} > {self.above} in {self.window_s:g}s per {self.scope}"


class DriftSettings(Strict):
    """Per-deployment guards against a model quietly changing under the same name."""

    enabled: bool = True
    recent_requests: int = Field(20, ge=3, description="answers compared against the reference")
    reference_requests: int = Field(200, ge=3, description="answers that make the reference")
    min_reference: int = Field(20, ge=3, description="no drift alert before the reference holds this many")
    cost_factor: Decimal = Field(Decimal(2), gt=1, description="cost per request up or down by this factor")
    output_factor: Decimal = Field(Decimal(2), gt=1, description="mean output tokens up or down by this factor")
    fingerprint_samples: int = Field(5, ge=1, description="answers in a row with a new system_fingerprint")
    repoint_price_factor: Decimal = Field(Decimal(2), gt=1,
                                          description="a public model's first deployment now priced this many times "
                                                      "higher or lower than at the last start")


class WebhookSettings(Strict):
    url_env: str | None = Field(None, description="env var holding the webhook URL (Slack URLs are secrets)")
    url: str | None = Field(None, description="the URL itself, for webhooks that are not secret")
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> WebhookSettings:
        if self.url_env and self.url:
            raise ValueError("give url_env or url, not both")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class AlertSettings(Strict):
    enabled: bool = True
    window_s: float = Field(300, gt=0, le=86400, description="the window compared against the baseline")
    evaluate_every_s: float = Field(5.0, gt=0, description="how often windows are checked")
    cooldown_s: float = Field(600, ge=0, description="a cleared alert may fire again after this long")
    baseline: BaselineSettings = BaselineSettings()
    thresholds: list[ThresholdRule] = Field(
        default_factory=lambda: [ThresholdRule(metric="tokens", above=Decimal(10_000_000), window_s=300)])
    drift: DriftSettings = DriftSettings()
    webhook: WebhookSettings = WebhookSettings()
    brownout: bool = Field(False, description="a spend alert on a key also asks admission to brown that key out")
    keep_recent: int = Field(100, ge=1, description="alerts the dashboard shows")


class DashboardSettings(Strict):
    enabled: bool = Field(True, description="serve GET /dashboard (needs server.admin_key_env)")
    window_h: int = Field(24, ge=1, le=24 * 31, description="the dashboard's figures cover the last this many hours")
    refresh_s: float = Field(5.0, gt=0, description="how often the page fetches new figures")
    latency_samples: int = Field(2000, ge=10, description="latest answers per model the percentiles are taken over")


class ObserveSettings(Strict):
    metrics: MetricsSettings = MetricsSettings()
    logs: LogSettings = LogSettings()
    tracing: TracingSettings = TracingSettings()
    alerts: AlertSettings = AlertSettings()
    dashboard: DashboardSettings = DashboardSettings()
    drain_every_s: float = Field(1.0, gt=0, description="how often recorded requests are folded into the figures")

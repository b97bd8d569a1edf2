"""Spend and token anomalies: the current window against its weekly baseline, and fixed thresholds.

Every few seconds each series' last `window_s` is compared with what that series usually spends in a
window at this hour of this weekday (baselines.py), and each fixed rule (e.g. 10M tokens in 5 minutes)
with its limit. An alert fires when a condition starts to hold and stays quiet while it keeps holding;
once it clears, the same alert may fire again after `cooldown_s`. So one spike pages once, not every
evaluation.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.accounting.ledger_schema import LedgerRow
from tollway.observe.alerts import Alert
from tollway.observe.baselines import HourlyHistory, Series, hour_of
from tollway.observe.row_facts import total_tokens
from tollway.observe.settings import AlertSettings, ThresholdRule
from tollway.observe.window_sums import WindowSums

_UNITS = {"cost_usd": "USD", "tokens": "tokens", "requests": "requests", "errors": "errors"}


def series_of(row: LedgerRow, scopes: set[str]) -> list[Series]:
    """The series a row counts towards. Rows without a key (keys off) count for no key series."""
    names = {"total": "*", "key": row.key_id, "route_group": row.route_group, "deployment": row.deployment,
             "provider": row.provider}
    return [(scope, names[scope]) for scope in scopes if names[scope]]


class _Episodes:
    """Fires on the rising edge of a condition, re-arms when it clears, honours a cooldown."""

    def __init__(self, cooldown_s: float) -> None:
        self._cooldown = cooldown_s
        self._firing: set[tuple] = set()
        self._last: dict[tuple, float] = {}

    def forget(self, series: Series) -> None:
        """A series with no traffic left in any window: whatever fired for it has cleared."""
        self._firing = {ident for ident in self._firing if ident[-1] != series}

    def update(self, ident: tuple, holds: bool, now: float) -> bool:
        if not holds:
            self._firing.discard(ident)
            return False
        if ident in self._firing:
            return False
        self._firing.add(ident)
        last = self._last.get(ident)
        if last is not None and now - last < self._cooldown:
            return False
        self._last[ident] = now
        return True


class SpendWatch:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        baseline = settings.baseline
        self._baseline_scopes = set(baseline.scopes) if baseline.enabled else set()
        self._scopes = self._baseline_scopes | {rule.scope for rule in settings.thresholds}
        horizon = max([settings.window_s, *(rule.window_s for rule in settings.thresholds)])
        self._horizon = horizon
        self.history = HourlyHistory(baseline.weeks)
        self._windows: dict[Series, WindowSums] = {}
        self._episodes = _Episodes(settings.cooldown_s)

    def learn(self, row: LedgerRow, epoch_s: float) -> None:
        """A past request (from the ledger at start-up): history only."""
        if row.shadow:
            return
        cost, tokens, hour = Decimal(row.cost_usd), total_tokens(row), hour_of(epoch_s)
        for series in series_of(row, self._baseline_scopes):
            self.history.add(series, hour, cost, tokens)

    def observe(self, row: LedgerRow, now: float) -> None:
        """A request that just finished: history and the sliding windows."""
        if row.shadow:
            return
        cost, tokens = Decimal(row.cost_usd), total_tokens(row)
        self.learn(row, now)
        for series in series_of(row, self._scopes):
            window = self._windows.get(series)
            if window is None:
                window = self._windows[series] = WindowSums(self._horizon)
            window.add(now, cost, tokens, row.status != "ok")

    def evaluate(self, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        hour = hour_of(now)
        self.history.prune(hour)
        for series, window in list(self._windows.items()):
            window.prune(now)
            if series[0] in self._baseline_scopes:
                alerts += self._against_baseline(series, window, now, hour)
            for index, rule in enumerate(self.settings.thresholds):
                if rule.scope == series[0]:
                    alert = self._against_rule(index, rule, series, window, now)
                    if alert is not None:
                        alerts.append(alert)
            if window.empty():
                del self._windows[series]
                self._episodes.forget(series)
        return alerts

    def _against_baseline(self, series: Series, window: WindowSums, now: float, hour: int) -> list[Alert]:
        settings = self.settings.baseline
        window_s = self.settings.window_s
        alerts = []
        for metric, floor in (("cost_usd", settings.min_cost_usd), ("tokens", Decimal(settings.min_tokens))):
            baseline = self.history.baseline(series, metric, hour, settings.min_history_hours)
            if baseline is None:
                continue
            seen = window.total(now, window_s, metric)
            expected = baseline.per_hour * Decimal(str(window_s)) / 3600
            holds = seen > expected * settings.factor and seen - expected >= floor
            if self._episodes.update(("baseline", metric, series), holds, now):
                alerts.append(self._anomaly(series, metric, seen, expected, baseline.basis))
        return alerts

    def _anomaly(self, series: Series, metric: str, seen: Decimal, expected: Decimal, basis: str) -> Alert:
        scope, name = series
        unit = _UNITS[metric]
        ratio = "no usual traffic" if expected == 0 else f"{(seen / expected):.1f}x the usual"
        window = f"{self.settings.window_s:g}s"
        return Alert(
            kind="spend_anomaly", severity="critical" if metric == "cost_usd" else "warning",
            title=f"{'Spend' if metric == 'cost_usd' else 'Token use'} spike on {scope} {name}: "
                  f"{_amount(seen, metric)} {unit} in the last {window} ({ratio})",
            detail=f"{scope} {name} used {_amount(seen, metric)} {unit} in the last {window}; the baseline for "
                   f"{basis} is {_amount(expected, metric)} {unit} per {window}.",
            scope=scope, subject=name, value=_amount(seen, metric), expected=_amount(expected, metric))

    def _against_rule(self, index: int, rule: ThresholdRule, series: Series, window: WindowSums,
                      now: float) -> Alert | None:
        seen = window.total(now, rule.window_s, rule.metric)
        if not self._episodes.update(("rule", index, series), seen > rule.above, now):
            return None
        scope, name = series
        unit = _UNITS[rule.metric]
        where = "all traffic" if scope == "total" else f"{scope} {name}"
        return Alert(
            kind="threshold", severity="critical",
            title=f"{rule.label}: {where} reached {_amount(seen, rule.metric)} {unit}",
            detail=f"{where} used {_amount(seen, rule.metric)} {unit} in the last {rule.window_s:g}s, above the "
                   f"fixed limit of {rule.above} {unit}.",
            scope=scope, subject=name if scope != "total" else "", value=_amount(seen, rule.metric),
            expected=str(rule.above))


def _amount(value: Decimal, metric: str) -> str:
    if metric == "cost_usd":
        return f"{value.quantize(Decimal('0.000001')):f}" if value.as_tuple().exponent < -6 else f"{value:f}"
    return f"{value:f}" if value == value.to_integral_value() else f"{value:.1f}"

"""Spend and token anomalies: the current window against its weekly baseline, and fixed thresholds.

Every few seconds each series' last `window_s` is compared with what that series usually spends in a
window at this hour of this weekday (baselines.py), and each fixed rule (e.g. 10M tokens in 5 minutes)
with its limit. An alert fires when a condition starts to hold and stays quiet while it keeps holding;
once it clears, the same alert may fire again after `cooldown_s`. So one spike pages once, not every
evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tollway.accounting.ledger_schema import LedgerRow
from tollway.observe.alerts import Alert
from tollway.observe.baselines import HourlyHistory, Series, hour_of
from tollway.observe.row_batch import RowBatch
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
        self.observe_batch(RowBatch.of([row]), now)

    def observe_batch(self, batch: RowBatch, now: float) -> None:
        """Requests that finished by `now` (one drain): each series' history and window updated once."""
        sums: dict[Series, list] = {}  # series -> [cost, tokens, requests, errors]
        scopes = self._scopes
        for group in batch.groups.values():
            if group.shadow:
                continue
            names = {"total": "*", "key": group.key_id, "route_group": group.route_group,
                     "deployment": group.deployment, "provider": group.provider}
            tokens = group.prompt_tokens + group.completion_tokens
            for scope in scopes:
                name = names[scope]
                if not name:
                    continue
                entry = sums.get((scope, name))
                if entry is None:
                    sums[(scope, name)] = [group.cost_usd, tokens, group.count, group.errors]
                else:
                    entry[0] += group.cost_usd
                    entry[1] += tokens
                    entry[2] += group.count
                    entry[3] += group.errors
        hour = hour_of(now)
        for series, (cost, tokens, requests, errors) in sums.items():
            if series[0] in self._baseline_scopes:
                self.history.add(series, hour, cost, tokens)
            window = self._windows.get(series)
            if window is None:
                window = self._windows[series] = WindowSums(self._horizon)
            window.add_sums(now, cost, tokens, requests, errors)

    def evaluate(self, now: float) -> list[Alert]:
        """Alerts that start now. Series that fire on the very same traffic (a key, its route group and
        its deployment during one spike) share one alert, which names them all."""
        hour = hour_of(now)
        self.history.prune(hour)
        findings: dict[tuple, list[_Finding]] = {}
        for series, window in list(self._windows.items()):
            window.prune(now)
            if series[0] in self._baseline_scopes:
                finding = self._against_baseline(series, window, now, hour)
                if finding is not None:
                    findings.setdefault(("baseline", finding.seen), []).append(finding)
            for index, rule in enumerate(self.settings.thresholds):
                if rule.scope == series[0]:
                    finding = self._against_rule(index, rule, series, window, now)
                    if finding is not None:
                        findings.setdefault(("rule", index, finding.seen), []).append(finding)
            if window.empty():
                del self._windows[series]
                self._episodes.forget(series)
        return [self._alert(sorted(group, key=_specific_first)) for group in findings.values()]

    def _against_baseline(self, series: Series, window: WindowSums, now: float, hour: int) -> _Finding | None:
        settings = self.settings.baseline
        window_s = Decimal(str(self.settings.window_s))
        seen: dict[str, Decimal] = {}
        expected: dict[str, Decimal] = {}
        basis = ""
        for metric, floor in (("cost_usd", settings.min_cost_usd), ("tokens", Decimal(settings.min_tokens))):
            baseline = self.history.baseline(series, metric, hour, settings.min_history_hours)
            if baseline is None:
                continue
            total = window.total(now, self.settings.window_s, metric)
            usual = baseline.per_hour * window_s / 3600
            if total > usual * settings.factor and total - usual >= floor:
                seen[metric], expected[metric], basis = total, usual, baseline.basis
        if not self._episodes.update(("baseline", series), bool(seen), now):
            return None
        return _Finding(series, tuple(sorted(seen.items())), expected, basis)

    def _against_rule(self, index: int, rule: ThresholdRule, series: Series, window: WindowSums,
                      now: float) -> _Finding | None:
        total = window.total(now, rule.window_s, rule.metric)
        if not self._episodes.update(("rule", index, series), total > rule.above, now):
            return None
        return _Finding(series, ((rule.metric, total),), {rule.metric: rule.above}, "", rule)

    def _alert(self, group: list[_Finding]) -> Alert:
        first = group[0]
        scope, name = first.series
        where = "all traffic" if scope == "total" else f"{scope} {name}"
        others = [f"{s} {n}" for s, n in (f.series for f in group[1:])]
        also = f" (also {', '.join(others)})" if others else ""
        if first.rule is not None:
            return self._threshold_alert(first, where, also)
        window = f"{self.settings.window_s:g}s"
        seen = dict(first.seen)
        parts = [f"{_amount(value, metric)} {_UNITS[metric]} (usual {_amount(first.expected[metric], metric)}, "
                 f"{_ratio(value, first.expected[metric])})" for metric, value in seen.items()]
        lead = "cost_usd" if "cost_usd" in seen else "tokens"
        return Alert(
            kind="spend_anomaly", severity="critical" if lead == "cost_usd" else "warning",
            title=f"{'Spend' if lead == 'cost_usd' else 'Token use'} spike on {where}: "
                  f"{_amount(seen[lead], lead)} {_UNITS[lead]} in the last {window}{also}",
            detail=f"In the last {window}, {where} used {' and '.join(parts)}; the usual amount is {first.basis}.",
            scope=scope, subject=name if scope != "total" else "", value=_amount(seen[lead], lead),
            expected=_amount(first.expected[lead], lead))

    def _threshold_alert(self, finding: _Finding, where: str, also: str) -> Alert:
        rule = finding.rule
        assert rule is not None
        metric, total = finding.seen[0]
        unit = _UNITS[metric]
        scope, name = finding.series
        return Alert(
            kind="threshold", severity="critical",
            title=f"{rule.label}: {where} reached {_amount(total, metric)} {unit}{also}",
            detail=f"{where} used {_amount(total, metric)} {unit} in the last {rule.window_s:g}s, above the "
                   f"fixed limit of {rule.above} {unit}.",
            scope=scope, subject=name if scope != "total" else "", value=_amount(total, metric),
            expected=str(rule.above))


_SPECIFICITY = {"key": 0, "deployment": 1, "provider": 2, "route_group": 3, "total": 4}


@dataclass(frozen=True)
class _Finding:
    series: Series
    seen: tuple[tuple[str, Decimal], ...]
    expected: dict[str, Decimal]
    basis: str
    rule: ThresholdRule | None = None


def _specific_first(finding: _Finding) -> tuple[int, str]:
    return _SPECIFICITY[finding.series[0]], finding.series[1]


def _ratio(seen: Decimal, usual: Decimal) -> str:
    return "none usual" if usual == 0 else f"{seen / usual:.1f}x"


def _amount(value: Decimal, metric: str) -> str:
    """Money to the micro-dollar, counts whole (averages to one decimal), no trailing zeros."""
    if metric == "cost_usd":
        if value.as_tuple().exponent < -6:  # type: ignore[operator]
            value = value.quantize(Decimal("0.000001"))
        return f"{value.normalize():f}"
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:.1f}"

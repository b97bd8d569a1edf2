"""Spend and token anomalies: the current window against its weekly baseline, and fixed thresholds.

Every few seconds each series' last `window_s` is compared with what that series usually spends in a
window at this hour of this weekday (baselines.py), and each fixed rule (e.g. 10M tokens in 5 minutes)
with its limit. An alert fires when a condition starts to hold and stays quiet while it keeps holding;
once it clears, the same alert may fire again after `cooldown_s`. So one spike pages once, not every
evaluation. Findings that the same traffic tripped (a key, its deployment and its route group during one
spike) are one page naming them all (incidents.py); each fixed rule's finding is a page of its own.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from tollway.core.alerts import Alert
from tollway.ledger.schema import LedgerRow
from tollway.observe.baselines import HourlyHistory, Series, hour_of
from tollway.observe.incidents import Finding, Incidents
from tollway.observe.row_batch import RowBatch
from tollway.observe.row_facts import total_tokens
from tollway.observe.settings import AlertSettings, ThresholdRule
from tollway.observe.window_sums import Cell, CellWindows, WindowSums

_UNITS = {"cost_usd": "USD", "tokens": "tokens", "requests": "requests", "errors": "errors"}


def series_of(row: LedgerRow, scopes: Collection[str]) -> list[Series]:
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

    def firing(self, ident: tuple) -> bool:
        return ident in self._firing

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
        self._cells = CellWindows(settings.window_s)
        self._incidents = Incidents()

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
        cell_sums: dict[Cell, list] = {}  # cell -> [cost, tokens]
        scopes = self._scopes
        for group in batch.groups.values():
            if group.shadow:
                continue
            tokens = group.prompt_tokens + group.completion_tokens
            cell = (group.key_id, group.route_group, group.deployment, group.provider)
            entry = cell_sums.get(cell)
            if entry is None:
                cell_sums[cell] = [group.cost_usd, tokens]
            else:
                entry[0] += group.cost_usd
                entry[1] += tokens
            names = {"total": "*", "key": group.key_id, "route_group": group.route_group,
                     "deployment": group.deployment, "provider": group.provider}
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
        if self._baseline_scopes:
            for cell, (cost, tokens) in cell_sums.items():
                self._cells.add(cell, now, cost, tokens)

    def evaluate(self, now: float) -> list[Alert]:
        """Alerts that start now: one per incident (see incidents.py), and one per fixed rule and series."""
        hour = hour_of(now)
        self.history.prune(hour)
        spikes: list[Finding] = []
        alerts: list[Alert] = []
        for series, window in list(self._windows.items()):
            window.prune(now)
            if series[0] in self._baseline_scopes:
                finding = self._against_baseline(series, window, now, hour)
                if finding is not None:
                    spikes.append(finding)
            for index, rule in enumerate(self.settings.thresholds):
                if rule.scope == series[0]:
                    finding = self._against_rule(index, rule, series, window, now)
                    if finding is not None:
                        alerts.append(self._threshold_alert(finding))
            if window.empty():
                del self._windows[series]
                self._episodes.forget(series)
        self._cells.prune(now)
        if not spikes:
            return alerts
        pages = self._incidents.group(spikes, lambda metric: self._cells.amounts(now, metric),
                                      lambda series: self._episodes.firing(("baseline", series)))
        return [self._spike_alert(page) for page in pages] + alerts

    def _against_baseline(self, series: Series, window: WindowSums, now: float, hour: int) -> Finding | None:
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
        return Finding(series, tuple(sorted(seen.items())), expected, basis)

    def _against_rule(self, index: int, rule: ThresholdRule, series: Series, window: WindowSums,
                      now: float) -> Finding | None:
        total = window.total(now, rule.window_s, rule.metric)
        if not self._episodes.update(("rule", index, series), total > rule.above, now):
            return None
        return Finding(series, ((rule.metric, total),), {rule.metric: rule.above}, "", rule)

    def _spike_alert(self, page: list[Finding]) -> Alert:
        first = page[0]
        scope, name = first.series
        where = _where(first.series)
        others = [f"{s} {n}" for s, n in (f.series for f in page[1:])]
        also = f" (also {', '.join(others)})" if others else ""
        window = f"{self.settings.window_s:g}s"
        seen = dict(first.seen)
        parts = [f"{_amount(value, metric)} {_UNITS[metric]} (usual {_amount(first.expected[metric], metric)}, "
                 f"{_ratio(value, first.expected[metric])})" for metric, value in seen.items()]
        lead = first.metric
        same = "".join(f" The same traffic took {_where(f.series)} to {_amount(dict(f.seen)[f.metric], f.metric)} "
                       f"{_UNITS[f.metric]} (usual {_amount(f.expected[f.metric], f.metric)})." for f in page[1:])
        return Alert(
            kind="spend_anomaly", severity="critical" if lead == "cost_usd" else "warning",
            title=f"{'Spend' if lead == 'cost_usd' else 'Token use'} spike on {where}: "
                  f"{_amount(seen[lead], lead)} {_UNITS[lead]} in the last {window}{also}",
            detail=f"In the last {window}, {where} used {' and '.join(parts)}; the usual amount is "
                   f"{first.basis}.{same}",
            scope=scope, subject=name if scope != "total" else "", value=_amount(seen[lead], lead),
            expected=_amount(first.expected[lead], lead))

    def _threshold_alert(self, finding: Finding) -> Alert:
        rule = finding.rule
        assert rule is not None
        metric, total = finding.seen[0]
        unit = _UNITS[metric]
        scope, name = finding.series
        where = _where(finding.series)
        return Alert(
            kind="threshold", severity="critical",
            title=f"{rule.label}: {where} reached {_amount(total, metric)} {unit}",
            detail=f"{where} used {_amount(total, metric)} {unit} in the last {rule.window_s:g}s, above the "
                   f"fixed limit of {rule.above} {unit}.",
            scope=scope, subject=name if scope != "total" else "", value=_amount(total, metric),
            expected=str(rule.above))


def _where(series: Series) -> str:
    return "all traffic" if series[0] == "total" else f"{series[0]} {series[1]}"


def _ratio(seen: Decimal, usual: Decimal) -> str:
    return "none usual" if usual == 0 else f"{seen / usual:.1f}x"


def _amount(value: Decimal, metric: str) -> str:
    """Money to the micro-dollar, counts whole (averages to one decimal), no trailing zeros."""
    if metric == "cost_usd":
        if value.as_tuple().exponent < -6:  # type: ignore[operator]
            value = value.quantize(Decimal("0.000001"))
        return f"{value.normalize():f}"
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:.1f}"

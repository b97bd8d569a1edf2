"""Drift guards: a deployment whose answers suddenly cost, run or identify differently.

A provider can move a model name to other weights, a config can point a deployment at another model, or
a price can change; none of these raise an error, so tollway watches each deployment's answered requests:

- cost per request: the mean of the last `recent_requests` against the mean of the `reference_requests`
  before them; up or down by `cost_factor` alerts;
- output length: the same for completion tokens, with `output_factor`;
- `system_fingerprint`: `fingerprint_samples` answers in a row with a fingerprint other than the one
  seen so far (needs rows that carry the fingerprint; rows without one are ignored).

After an alert the recent answers become the new reference, so a lasting change pages once.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from tollway.accounting.ledger_schema import LedgerRow
from tollway.observe.alerts import Alert
from tollway.observe.settings import AlertSettings, DriftSettings


class _MeanShift:
    """Recent values against a reference of the values just before them; sums kept running (O(1) per value).

    The means are compared as cross products (recent_sum x reference_count against reference_sum x
    recent_count x factor), so the check after every value multiplies instead of dividing; values are
    Decimals (cost) or ints (tokens), both exact."""

    __slots__ = ("recent", "recent_size", "recent_sum", "reference", "reference_size", "reference_sum")

    def __init__(self, recent: int, reference: int) -> None:
        self.recent: deque[Decimal | int] = deque()
        self.reference: deque[Decimal | int] = deque()
        self.recent_size = recent
        self.reference_size = reference
        self.recent_sum: Decimal | int = 0
        self.reference_sum: Decimal | int = 0

    def push(self, value: Decimal | int, min_reference: int, factor: Decimal | None) -> tuple[Decimal, Decimal] | None:
        """Add the newest value; with a `factor`, return (recent mean, reference mean) when they now differ
        by it either way (once the recent window is full and the reference holds `min_reference`)."""
        recent = self.recent
        full = len(recent) == self.recent_size
        if full:
            moved = recent.popleft()
            self.recent_sum -= moved
            reference = self.reference
            if len(reference) == self.reference_size:
                self.reference_sum -= reference.popleft()
            reference.append(moved)
            self.reference_sum += moved
        recent.append(value)
        self.recent_sum += value
        if factor is None or not (full or len(recent) == self.recent_size):
            return None
        n_reference = len(self.reference)
        if n_reference < min_reference:
            return None
        n_recent = len(recent)
        scaled_recent = self.recent_sum * n_reference      # recent mean x (n_recent x n_reference)
        scaled_reference = self.reference_sum * n_recent  # reference mean x the same
        if scaled_reference == 0:
            return self._means() if scaled_recent > 0 else None
        if scaled_recent >= scaled_reference * factor or scaled_recent * factor <= scaled_reference:
            return self._means()
        return None

    def _means(self) -> tuple[Decimal, Decimal]:
        return Decimal(self.recent_sum) / len(self.recent), Decimal(self.reference_sum) / len(self.reference)

    def adopt_recent(self) -> None:
        self.reference.clear()
        self.reference.extend(self.recent)
        while len(self.reference) > self.reference_size:
            self.reference.popleft()
        self.reference_sum = sum(self.reference, 0)
        self.recent.clear()
        self.recent_sum = 0


class _Fingerprint:
    __slots__ = ("candidate", "known", "streak")

    def __init__(self) -> None:
        self.known = ""
        self.candidate = ""
        self.streak = 0

    def see(self, fingerprint: str, needed: int) -> tuple[str, str] | None:
        """(old, new) when `needed` answers in a row carried a new fingerprint."""
        if not self.known:
            self.known = fingerprint
            return None
        if fingerprint == self.known:
            self.candidate, self.streak = "", 0
            return None
        if fingerprint != self.candidate:
            self.candidate, self.streak = fingerprint, 0
        self.streak += 1
        if self.streak < needed:
            return None
        old, self.known, self.candidate, self.streak = self.known, fingerprint, "", 0
        return old, fingerprint


class _DeploymentDrift:
    __slots__ = ("cost", "fingerprint", "output")

    def __init__(self, settings: DriftSettings) -> None:
        self.cost = _MeanShift(settings.recent_requests, settings.reference_requests)
        self.output = _MeanShift(settings.recent_requests, settings.reference_requests)
        self.fingerprint = _Fingerprint()


class DriftWatch:
    def __init__(self, settings: DriftSettings) -> None:
        self.settings = settings
        self._deployments: dict[str, _DeploymentDrift] = {}

    @classmethod
    def for_alerts(cls, alerts: AlertSettings) -> "DriftWatch":
        """Drift alerts are alerts: `alerts.enabled: false` turns them off with the rest."""
        return cls(alerts.drift if alerts.enabled else alerts.drift.model_copy(update={"enabled": False}))

    def observe(self, row: LedgerRow, fingerprint: str = "", alert: bool = True) -> list[Alert]:
        """Fold in one answered request; `alert=False` while reading history (it only builds references).
        With `alerts.drift.enabled: false` nothing is kept or checked."""
        if not self.settings.enabled or row.status != "ok" or row.shadow or not row.deployment or not row.priced:
            return []
        return self.observe_answer(row, Decimal(row.cost_usd), fingerprint, alert)

    def observe_answer(self, row: LedgerRow, cost: Decimal, fingerprint: str = "", alert: bool = True) -> list[Alert]:
        """`observe` for a row already known to be an answered, priced, non-shadow request costing `cost`."""
        if not self.settings.enabled:
            return []
        state = self._deployments.get(row.deployment)
        if state is None:
            state = self._deployments[row.deployment] = _DeploymentDrift(self.settings)
        settings = self.settings
        cost_shift = state.cost.push(cost, settings.min_reference, settings.cost_factor if alert else None)
        output_shift = state.output.push(row.completion_tokens, settings.min_reference,
                                         settings.output_factor if alert else None)
        alerts = []
        if fingerprint:
            change = state.fingerprint.see(fingerprint, settings.fingerprint_samples)
            if change is not None and alert:
                alerts.append(self._fingerprint_alert(row, *change))
        if cost_shift is not None:
            state.cost.adopt_recent()
            alerts.append(self._shift_alert("cost_drift", "cost per request", "USD", row, *cost_shift))
        if output_shift is not None:
            state.output.adopt_recent()
            alerts.append(self._shift_alert("output_drift", "output length", "completion tokens", row, *output_shift))
        return alerts

    def _shift_alert(self, kind: str, what: str, unit: str, row: LedgerRow, recent: Decimal,
                     reference: Decimal) -> Alert:
        direction = "up" if recent > reference else "down"
        ratio = "from nothing" if reference == 0 else f"{recent / reference:.2f}x"
        n_recent, n_reference = self.settings.recent_requests, self.settings.reference_requests
        return Alert(
            kind=kind, severity="warning", scope="deployment", subject=row.deployment,
            title=f"{row.deployment}: {what} {direction} {ratio} ({row.provider}/{row.upstream_model})",
            detail=f"The last {n_recent} answers of {row.deployment} averaged {_fmt(recent)} {unit}; the up to "
                   f"{n_reference} answers before them averaged {_fmt(reference)} {unit}. A model swap behind "
                   f"the same name, a price change or a new prompt pattern can cause this.",
            value=_fmt(recent), expected=_fmt(reference))

    def _fingerprint_alert(self, row: LedgerRow, old: str, new: str) -> Alert:
        return Alert(
            kind="fingerprint_change", severity="warning", scope="deployment", subject=row.deployment,
            title=f"{row.deployment}: system_fingerprint changed from {old} to {new}",
            detail=f"{self.settings.fingerprint_samples} answers in a row from {row.provider}/{row.upstream_model} "
                   f"carried system_fingerprint {new} instead of {old}: the provider changed the model or its "
                   f"serving configuration.",
            value=new, expected=old)


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:.6g}"

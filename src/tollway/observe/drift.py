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
from tollway.observe.settings import DriftSettings


class _MeanShift:
    """Recent values against a reference of the values just before them; sums kept running (O(1) per value)."""

    __slots__ = ("recent", "recent_sum", "reference", "reference_sum")

    def __init__(self, recent: int, reference: int) -> None:
        self.recent: deque[Decimal] = deque(maxlen=recent)
        self.reference: deque[Decimal] = deque(maxlen=reference)
        self.recent_sum = Decimal(0)
        self.reference_sum = Decimal(0)

    def add(self, value: Decimal) -> None:
        if len(self.recent) == self.recent.maxlen:
            moved = self.recent[0]
            self.recent_sum -= moved
            if len(self.reference) == self.reference.maxlen:
                self.reference_sum -= self.reference[0]
            self.reference.append(moved)
            self.reference_sum += moved
        self.recent.append(value)
        self.recent_sum += value

    def shift(self, min_reference: int, factor: Decimal) -> tuple[Decimal, Decimal] | None:
        """(recent mean, reference mean) when they differ by `factor` either way, else None."""
        if len(self.recent) < (self.recent.maxlen or 0) or len(self.reference) < min_reference:
            return None
        recent = self.recent_sum / len(self.recent)
        reference = self.reference_sum / len(self.reference)
        if reference == 0:
            return (recent, reference) if recent > 0 else None
        ratio = recent / reference
        return (recent, reference) if ratio >= factor or ratio <= 1 / factor else None

    def adopt_recent(self) -> None:
        self.reference.clear()
        self.reference.extend(self.recent)
        self.reference_sum = sum(self.reference, Decimal(0))
        self.recent.clear()
        self.recent_sum = Decimal(0)


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

    def observe(self, row: LedgerRow, fingerprint: str = "", alert: bool = True) -> list[Alert]:
        """Fold in one answered request; `alert=False` while reading history (it only builds references)."""
        if row.status != "ok" or row.shadow or not row.deployment or not row.priced:
            return []
        state = self._deployments.get(row.deployment)
        if state is None:
            state = self._deployments[row.deployment] = _DeploymentDrift(self.settings)
        state.cost.add(Decimal(row.cost_usd))
        state.output.add(Decimal(row.completion_tokens))
        alerts = []
        if fingerprint:
            change = state.fingerprint.see(fingerprint, self.settings.fingerprint_samples)
            if change is not None and alert:
                alerts.append(self._fingerprint_alert(row, *change))
        if not alert:
            return []
        shift = state.cost.shift(self.settings.min_reference, self.settings.cost_factor)
        if shift is not None:
            state.cost.adopt_recent()
            alerts.append(self._shift_alert("cost_drift", "cost per request", "USD", row, *shift))
        shift = state.output.shift(self.settings.min_reference, self.settings.output_factor)
        if shift is not None:
            state.output.adopt_recent()
            alerts.append(self._shift_alert("output_drift", "output length", "completion tokens", row, *shift))
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

"""Drift guards: a deployment whose answers suddenly cost, run or identify differently.

A provider can move a model name to other weights, a config can point a deployment at another model, or
a price can change; none of these raise an error, so tollway watches each deployment's answered requests:

- cost per request: the mean of the last `recent_requests` against the mean of the `reference_requests`
  before them; up or down by `cost_factor` alerts;
- output length: the same for completion tokens, with `output_factor`;
- `system_fingerprint`: `fingerprint_samples` answers in a row with a fingerprint other than the one
  seen so far (rows without one are ignored).

A lasting change pages once, after it is established, with its full size. The recent window that first
moves by the factor straddles the change (old answers and new), so its mean understates the change and
paging on it would page again once the window fills with new answers. Instead that moment only raises a
suspicion: the reference stays as it was, and the next `recent_requests` answers, all after the change
began, decide. If they still differ from the reference by the factor, in their mean and in their median,
the change is established: it pages as their mean against the old reference's, and they become the
reference, so the new level never pages again and a change back pages once the same way. Otherwise it
was a burst, and nothing pages: a few outliers move a mean a long way, but a median only once they are
half the answers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from tollway.core.alerts import Alert
from tollway.ledger.schema import LedgerRow
from tollway.observe.settings import AlertSettings, DriftSettings


@dataclass(frozen=True, slots=True)
class Shift:
    """An established change: the new level (answers since the change) against the old reference."""

    new: Decimal
    old: Decimal
    new_answers: int
    old_answers: int


class _MeanShift:
    """Recent values against a reference of the values just before them; sums kept running (O(1) per value).

    Values are integers: completion tokens as they are, costs in atto-dollars (1e-18 USD, far below the six
    significant digits an alert shows). The means are compared as cross products (recent_sum x
    reference_count against reference_sum x recent_count x factor), with the factor as a ratio of two
    integers, so the check after every answer is a few integer multiplications: it runs on every answered
    request, and Decimal arithmetic there cost several times more."""

    __slots__ = ("recent", "recent_size", "recent_sum", "reference", "reference_size", "reference_sum", "suspected",
                 "_up", "_down")

    def __init__(self, recent: int, reference: int, factor: Decimal) -> None:
        self.recent: deque[int] = deque()
        self.reference: deque[int] = deque()
        self.recent_size = recent
        self.reference_size = reference
        self.recent_sum = 0
        self.reference_sum = 0
        self.suspected = False  # the recent window moved by the factor; the answers after it decide
        self._up, self._down = factor.as_integer_ratio()  # factor = _up / _down

    def push(self, value: int, min_reference: int) -> tuple[Decimal, Decimal, int, int] | None:
        """Add the newest value; return (new mean, old mean, new count, old count) when a change by the
        factor either way is now established."""
        if self.suspected:
            return self._confirm(value)
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
        n_reference = len(self.reference)
        if not (full or len(recent) == self.recent_size) or n_reference < min_reference:
            return None
        # _differs, written out: this runs on every answered request
        new, old = self.recent_sum * n_reference, self.reference_sum * len(recent)
        if (new > 0) if old == 0 else (new * self._down >= old * self._up or new * self._up <= old * self._down):
            self.suspected = True
            recent.clear()  # it straddles the change: part of neither level
            self.recent_sum = 0
        return None

    def _confirm(self, value: int) -> tuple[Decimal, Decimal, int, int] | None:
        """Gather `recent_size` answers after the suspicion; then report them if they still differ."""
        self.recent.append(value)
        self.recent_sum += value
        if len(self.recent) < self.recent_size:
            return None
        self.suspected = False
        if not (self._differs() and self._apart(_median(self.recent), _median(self.reference))):
            return None  # a burst, not a change: these answers carry on as the recent window
        shift = (Decimal(self.recent_sum) / len(self.recent), Decimal(self.reference_sum) / len(self.reference),
                 len(self.recent), len(self.reference))
        self._adopt_recent()
        return shift

    def _differs(self) -> bool:
        # recent mean against reference mean, both scaled by (n_recent x n_reference)
        return self._apart(self.recent_sum * len(self.reference), self.reference_sum * len(self.recent))

    def _apart(self, new: int, old: int) -> bool:
        if old == 0:
            return new > 0
        up, down = self._up, self._down
        return new * down >= old * up or new * up <= old * down

    def _adopt_recent(self) -> None:
        """The established new level becomes the reference."""
        self.reference.clear()
        self.reference.extend(self.recent)
        while len(self.reference) > self.reference_size:
            self.reference.popleft()
        self.reference_sum = sum(self.reference, 0)
        self.recent.clear()
        self.recent_sum = 0


def _median(values: deque[int]) -> int:
    """The lower median: one of the values."""
    return sorted(values)[(len(values) - 1) // 2]


_ATTO = 18  # costs are tracked in 1e-18 USD


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
        self.cost = _MeanShift(settings.recent_requests, settings.reference_requests, settings.cost_factor)
        self.output = _MeanShift(settings.recent_requests, settings.reference_requests, settings.output_factor)
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
        """Fold in one answered request; `alert=False` while reading history: the guards run the same way
        (so a change the ledger already shows is the reference at start, as it was for the process that
        wrote it) but return no alerts. With `alerts.drift.enabled: false` nothing is kept or checked."""
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
        cost_shift = state.cost.push(int(cost.scaleb(_ATTO)), settings.min_reference)
        output_shift = state.output.push(row.completion_tokens, settings.min_reference)
        change = state.fingerprint.see(fingerprint, settings.fingerprint_samples) if fingerprint else None
        if not alert:
            return []
        alerts = []
        if change is not None:
            alerts.append(self._fingerprint_alert(row, *change))
        if cost_shift is not None:
            new, old, new_answers, old_answers = cost_shift
            shift = Shift(new.scaleb(-_ATTO), old.scaleb(-_ATTO), new_answers, old_answers)
            alerts.append(self._shift_alert("cost_drift", "cost per request", "USD", row, shift))
        if output_shift is not None:
            alerts.append(self._shift_alert("output_drift", "output length", "completion tokens", row,
                                            Shift(*output_shift)))
        return alerts

    def _shift_alert(self, kind: str, what: str, unit: str, row: LedgerRow, shift: Shift) -> Alert:
        new, old = shift.new, shift.old
        direction = "up" if new > old else "down"
        ratio = "from nothing" if old == 0 else f"{new / old:.2f}x"
        return Alert(
            kind=kind, severity="warning", scope="deployment", subject=row.deployment,
            title=f"{row.deployment}: {what} {direction} {ratio} ({row.provider}/{row.upstream_model})",
            detail=f"Since the change, {shift.new_answers} answers of {row.deployment} in a row averaged "
                   f"{_fmt(new)} {unit}; the {shift.old_answers} answers before it averaged {_fmt(old)} {unit}. "
                   f"This is the new reference. A model swap behind the same name, a price change or a new "
                   f"prompt pattern can cause this.",
            value=_fmt(new), expected=_fmt(old))

    def _fingerprint_alert(self, row: LedgerRow, old: str, new: str) -> Alert:
        return Alert(
            kind="fingerprint_change", severity="warning", scope="deployment", subject=row.deployment,
            title=f"{row.deployment}: system_fingerprint changed from {old} to {new}",
            detail=f"{self.settings.fingerprint_samples} answers in a row from {row.provider}/{row.upstream_model} "
                   f"carried system_fingerprint {new} instead of {old}: the provider changed the model or its "
                   f"serving configuration.",
            value=new, expected=old)


def _fmt(value: Decimal) -> str:
    """Six significant digits at most, no trailing zeros, never an exponent."""
    if value != value.to_integral_value():
        value = Decimal(f"{value:.6g}")
    return f"{value.normalize():f}"

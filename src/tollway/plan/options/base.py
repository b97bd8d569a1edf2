"""What every priced option answers, whatever its kind.

Each option is a cost function of the workload. The economics (horizons, break-evens, utilisation
curves) only ever ask these questions, so a new kind of deployment is one new module here and nothing
else changes. Break-evens are solved exactly because each option also says where its cost stops being
linear in volume (a unit is added, an hour starts to overflow): between those points two options' cost
difference is a straight line with one root.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.plan.scenario import ScenarioError
from tollway.plan.workload import Workload

HOURS_PER_MONTH = Decimal(730)  # 8760 / 12
DAYS_PER_MONTH = Decimal(365) / Decimal(12)  # non-terminating: prefer monthly_from_daily, which divides last
PER_MILLION = Decimal(1_000_000)
MAX_STEPS = 100_000


@dataclass(frozen=True)
class MonthlyCost:
    """One month of one option: the total, its parts, how many units/replicas, and whether it fits."""

    total: Decimal
    parts: dict[str, Decimal]
    units: int | None = None
    fits: bool = True
    why_not: str = ""


@dataclass(frozen=True)
class Sizing:
    """Descriptive facts about how an option is sized for a workload (for reports)."""

    unit_label: str | None
    units: int | None
    capacity_tpm: Decimal | None
    details: dict[str, str] = field(default_factory=dict)


class PricedOption(ABC):
    """A deployment option bound to its resolved prices; every method takes the workload to price."""

    name: str
    kind: str

    @abstractmethod
    def monthly_cost(self, workload: Workload, units: int | None = None) -> MonthlyCost:
        """Cost of one month; `units` fixes the deployment size instead of sizing it for the workload."""

    @abstractmethod
    def breakpoints(self, workload: Workload, up_to_scale: Decimal) -> list[Decimal]:
        """Volume multiples of `workload` in (0, up_to_scale] where the cost stops being linear."""

    def max_scale(self, workload: Workload) -> Decimal | None:
        """The largest multiple of `workload` this option can serve at its SLO; None if unbounded."""
        return None

    def capacity_scale(self, workload: Workload, units: int | None) -> Decimal | None:
        """The multiple of `workload` whose average rate fills the capacity of `units` (None: no capacity)."""
        return None

    @property
    def notes(self) -> tuple[str, ...]:
        """Caveats about how this option's prices were resolved (e.g. no batch tier in the catalog)."""
        return ()

    @abstractmethod
    def sizing(self, workload: Workload) -> Sizing:
        """How the option is sized for `workload`, in words and numbers."""

    def utilisation(self, workload: Workload) -> Decimal | None:
        """Average load over paid capacity when sized for `workload`; None for pure per-token options."""
        units = self.monthly_cost(workload).units
        full = self.capacity_scale(workload, units)
        return None if full is None or full == 0 else 1 / full


def monthly_from_daily(amount: Decimal) -> Decimal:
    """A month is 365/12 days; multiplying first and dividing once keeps daily figures exact to the end."""
    return amount * 365 / 12


def ceil_div(numerator: Decimal, denominator: Decimal) -> int:
    """The whole number of units covering numerator/denominator, exactly."""
    quotient = numerator / denominator
    whole = int(quotient)
    return whole if whole == quotient else whole + 1


def unit_steps(per_unit_scale: Decimal, first: int, up_to_scale: Decimal) -> list[Decimal]:
    """Scales n*per_unit_scale (n >= first) up to `up_to_scale`: where one more unit is needed."""
    steps = []
    n = first
    while per_unit_scale * n < up_to_scale:
        steps.append(per_unit_scale * n)
        n += 1
        if len(steps) > MAX_STEPS:
            raise ScenarioError(f"more than {MAX_STEPS} units/replicas would be needed within the charted volume; "
                                "is the per-unit capacity (unit_tpm, replica tokens/s) in the right unit?")
    return steps

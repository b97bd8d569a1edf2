"""The words admission shares with routing and the request lifecycle: who is calling (`Key`) and what
admission granted one request (`Ticket`), in a module of their own so that the modules admission is
split into, and the layers above, import the words without importing admission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from tollway.accounting.counters.base import BudgetCheck, RateCheck
from tollway.accounting.keys.records import KeyRecord
from tollway.core.money import from_nano

if TYPE_CHECKING:
    from tollway.accounting.prepared_admission import PreparedKey


@dataclass(slots=True)
class Key:
    """The caller, as far as routing and accounting care."""

    id: str = ""
    team: str = ""
    allowed_models: frozenset[str] | None = None  # None: every model
    residency: frozenset[str] | None = None       # None: any jurisdiction
    name: str = ""
    record: KeyRecord | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class Ticket:
    """What admission granted one request; handed back at settle."""

    key: Key
    held_nano: int = 0           # the budget hold (0 when no budget applies)
    held_tokens: int = 0
    id: str = ""
    backend: str = ""            # "redis" | "local"; "" when no counter was touched
    rates: Sequence[RateCheck] = ()
    budgets: Sequence[BudgetCheck] = ()
    paced: str = ""              # the deployment pacing charged this request to ("" for none)
    prepared: PreparedKey | None = field(default=None, repr=False, compare=False)  # what admit_prepared charged
    plan: list = field(default_factory=list, repr=False, compare=False)  # the routed plan in the order to try

    @property
    def held_usd(self) -> str:
        return str(from_nano(self.held_nano))


ANONYMOUS = Key()

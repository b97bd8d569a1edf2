"""The batch clock: what the planner and the executor take as now.

It is the wall clock, plus `TOLLWAY_BATCH_CLOCK_OFFSET_S` seconds when that variable is set. The offset
is for tests only: it moves a gateway to, say, a minute before DeepSeek's off-peak hours begin, so a
suite can watch a batch wait for the cheap hours and be priced at them without waiting for the real
hour. A line's price and its ledger row's time come from this clock; nothing else in tollway reads it.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

OFFSET_ENV = "TOLLWAY_BATCH_CLOCK_OFFSET_S"


def offset_s() -> float:
    text = os.environ.get(OFFSET_ENV, "").strip()
    return float(text) if text else 0.0


def batch_now() -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=offset_s())

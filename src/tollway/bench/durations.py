"""Parse human durations such as `500ms`, `10s`, `2m` into seconds.

Why its own module: SLOs, run bounds, warm-up and timeouts are all given on the command line as durations,
and a number without a unit is ambiguous (is `50` milliseconds or seconds?), so every one of them goes
through this single parser that insists on a unit.
"""

from __future__ import annotations

import re

_UNITS_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|min|m|h)\s*$")


class DurationError(ValueError):
    """A duration string that cannot be read; the message names the value and the accepted forms."""


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in `text` (e.g. '500ms', '1.5s', '2m'); raises DurationError naming `what` if unreadable."""
    match = _DURATION.match(str(text))
    if not match:
        raise DurationError(
            f"{what}: {text!r} is not a duration; write a number with a unit: us, ms, s, m or h (e.g. 500ms, 10s)")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def is_duration(text: str) -> bool:
    """True when `text` reads as a duration with a unit (used where a count or a duration is accepted)."""
    return bool(_DURATION.match(str(text)))

"""`--since` / `--until` values for every command: `7d`, `12h`, `30m`, or an ISO date/time (naive = UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_when(value: str | None, option: str, now: datetime | None = None) -> datetime | None:
    """A relative age (before `now`) or an absolute time; naive times are UTC. Errors name the option."""
    if not value:
        return None
    unit = _UNITS.get(value[-1:])
    if unit and value[:-1].isdigit():
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time: use e.g. 7d, 12h, 30m, 2026-11-01 or "
                                 "2026-11-01T08:00", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

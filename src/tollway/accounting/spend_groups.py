"""Spend grouped and filtered by who and what: key, team, end user, tag, route group, deployment, model.

Sums come from the ledger's rows, not its hourly roll-ups: the roll-ups are not keyed by end user or tag
(ledger/sql/postgres/007_end_user_and_tags.sql says why), and one rule for every dimension keeps the
figures identical on SQLite and PostgreSQL. A request with several tags is counted under each of them, so
lines grouped by tag can add up to more than the total; the total is always summed over requests once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from tollway.ledger.schema import LedgerRow

DIMENSIONS = ("key", "team", "user", "tag", "route-group", "deployment", "model")


@dataclass
class SpendLine:
    group: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)


@dataclass(frozen=True, slots=True)
class SpendFilter:
    """Which requests count; None means any."""

    key: str | None = None
    user: str | None = None
    tag: str | None = None

    def admits(self, row: LedgerRow, tags: list[str]) -> bool:
        return ((self.key is None or row.key_id == self.key) and (self.user is None or row.end_user == self.user)
                and (self.tag is None or self.tag in tags))


def row_tags(row: LedgerRow) -> list[str]:
    """The row's tags; a ledger written before tags existed (or an unreadable value) has none."""
    try:
        tags = orjson.loads(row.tags or "[]")
    except orjson.JSONDecodeError:
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def spend_by(rows: Iterable[LedgerRow], by: str, teams: Mapping[str, str] | None = None,
             only: SpendFilter = SpendFilter()) -> tuple[list[SpendLine], SpendLine]:
    """One line per value of `by` (most spent first) and the total over the requests counted once.
    `teams` maps key id to team, for `by="team"`. Shadow copies are not client traffic and are left out."""
    groups_of = grouper(by, teams or {})
    lines: dict[str, SpendLine] = {}
    total = SpendLine("total")
    for row in rows:
        if row.shadow:
            continue
        tags = row_tags(row)
        if not only.admits(row, tags):
            continue
        _add(total, row)
        for group in groups_of(row, tags):
            line = lines.get(group)
            if line is None:
                line = lines[group] = SpendLine(group)
            _add(line, row)
    return sorted(lines.values(), key=lambda line: (-line.cost_usd, line.group)), total


def grouper(by: str, teams: Mapping[str, str]) -> Callable[[LedgerRow, list[str]], list[str]]:
    """The groups a row (and its tags) counts under when grouping by `by`: one, or for tags each tag."""
    if by == "tag":
        return lambda row, tags: tags or [""]
    if by == "team":
        return lambda row, tags: [teams.get(row.key_id, "")]
    column = {"key": "key_id", "user": "end_user", "route-group": "route_group", "deployment": "deployment",
              "model": "requested_model"}.get(by)
    if column is None:
        raise ValueError(f"cannot group by {by!r}: use one of {', '.join(DIMENSIONS)}")
    return lambda row, tags: [getattr(row, column)]


def _add(line: SpendLine, row: LedgerRow) -> None:
    line.requests += 1
    line.errors += row.status != "ok"
    line.prompt_tokens += row.prompt_tokens
    line.completion_tokens += row.completion_tokens
    line.cost_usd += Decimal(row.cost_usd or "0")

"""Teams: the level between the org and its keys, each with rate limits and a list of budget entries.

A team is defined in exactly one place. Teams under `teams:` in the config file are reviewed data like
the rest of the config: the CLI and the admin API show them but refuse to change them (409
`team_in_config`), so a change cannot be silently undone by the next reload. Every other team lives in
the key store (SQLite or PostgreSQL, shared by replicas like keys), created and changed by `tollway
teams` and /admin/teams; replicas read team changes with key changes, every `keys.refresh_ms`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from tollway.accounting.budget_entries import BudgetEntry, BudgetEntryError, entries_from_json, to_json
from tollway.accounting.keys.fields import KeyFieldError, count
from tollway.accounting.keys.records import UNSET
from tollway.accounting.settings import TeamSettings

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True, slots=True)
class TeamRecord:
    """A team as the key store holds it."""

    name: str
    budgets: tuple[BudgetEntry, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    created_at: str = ""
    updated_at: str = ""
    deleted_at: str = ""
    seq: int = 0

    @property
    def deleted(self) -> bool:
        return bool(self.deleted_at)

    def entries(self) -> tuple[BudgetEntry, ...]:
        return self.budgets

    def public(self) -> dict:
        return {"name": self.name, "source": "store", "rpm": self.rpm, "tpm": self.tpm,
                "budgets": to_json(self.budgets), "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True, slots=True)
class TeamSpec:
    """The settable fields of a stored team: UNSET (rpm, tpm) and None (budgets) leave a field as it is."""

    budgets: tuple[BudgetEntry, ...] | None = None
    rpm: int | None | object = UNSET
    tpm: int | None | object = UNSET


def new_team(name: str, spec: TeamSpec) -> TeamRecord:
    now = datetime.now(timezone.utc).isoformat()
    return apply_team_spec(TeamRecord(name, created_at=now, updated_at=now), spec)


def apply_team_spec(record: TeamRecord, spec: TeamSpec) -> TeamRecord:
    changes: dict = {}
    if spec.budgets is not None:
        changes["budgets"] = tuple(spec.budgets)
    for name in ("rpm", "tpm"):
        value = getattr(spec, name)
        if value is not UNSET:
            changes[name] = value
    return replace(record, **changes)


def team_name_problem(name: object) -> str | None:
    """Why `name` cannot name a team, or None: 1-64 letters, digits, `_ - .` (it is part of counter names)."""
    if not isinstance(name, str) or not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        return f"team name {name!r}: use 1-64 letters, digits, '_', '-' or '.'"
    return None


def config_team_public(name: str, team: TeamSettings) -> dict:
    return {"name": name, "source": "config", "rpm": team.rpm, "tpm": team.tpm,
            "budgets": to_json(team.entries()), "created_at": None, "updated_at": None}


class TeamDirectory(dict):
    """name -> team (a config TeamSettings or a stored TeamRecord): what admission's limits and budgets read.

    A dict, so readers look a team up exactly as they look up `config.teams`; the config's teams win
    over stored ones of the same name (the store refuses to create those, but a config may gain a team
    that was stored before)."""

    def __init__(self, config_teams: dict[str, TeamSettings]) -> None:
        super().__init__(config_teams)
        self.config_teams = config_teams
        self.stored: dict[str, TeamRecord] = {}

    def take(self, records: list[TeamRecord]) -> bool:
        """Take changed stored teams; True when what readers see changed."""
        changed = False
        for record in records:
            current = self.stored.get(record.name)
            if current is not None and current.seq >= record.seq:
                continue
            changed = True
            if record.deleted:
                self.stored.pop(record.name, None)
            else:
                self.stored[record.name] = record
        if changed:
            self.clear()
            self.update({n: r for n, r in self.stored.items() if n not in self.config_teams})
            self.update(self.config_teams)
        return changed

    def with_config(self, config_teams: dict[str, TeamSettings]) -> TeamDirectory:
        """The same stored teams under a reloaded config."""
        directory = TeamDirectory(config_teams)
        directory.take(list(self.stored.values()))
        return directory


_TEAM_FIELDS = ("name", "budgets", "rpm", "tpm")


def team_spec_from_json(body: object, models: Collection[str] | None, creating: bool) -> tuple[str | None, TeamSpec]:
    """(name, spec) from an admin API body; a bad field raises KeyFieldError (400) naming it."""
    if not isinstance(body, dict):
        raise KeyFieldError(f"body: expected a JSON object with any of {', '.join(_TEAM_FIELDS)}")
    unknown = sorted(set(body) - set(_TEAM_FIELDS))
    if unknown:
        raise KeyFieldError(f"{unknown[0]}: unknown field; known: {', '.join(_TEAM_FIELDS)}")
    name = body.get("name")
    if creating or name is not None:
        problem = team_name_problem(name)
        if problem is not None:
            raise KeyFieldError(f"name: {problem}")
    try:
        budgets = entries_from_json(body["budgets"], "budgets", models) if "budgets" in body else None
    except BudgetEntryError as exc:
        raise KeyFieldError(str(exc)) from None
    return name, TeamSpec(budgets=budgets,
                          rpm=count(body["rpm"], "rpm") if "rpm" in body else UNSET,
                          tpm=count(body["tpm"], "tpm") if "tpm" in body else UNSET)

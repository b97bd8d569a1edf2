"""Which rate limits a request counts against: its key's, its team's, and its route group's deployments'.

Limits come from the key record (rpm, tpm), the config's `teams:` and `limits.deployments`. Subjects are
named "key:<id>", "team:<name>", "deployment:<name>"; the counters keep one rolling minute per subject.
"""

from __future__ import annotations

from tollway.accounting.counters.base import RateCheck, filled
from tollway.accounting.keys.records import KeyRecord
from tollway.accounting.settings import RateLimit, TeamSettings


class RateLimits:
    def __init__(self, teams: dict[str, TeamSettings], deployments: dict[str, RateLimit]) -> None:
        self.teams = teams
        self.deployments = deployments
        self._keys: dict[str, tuple[int, list[tuple[str, int | None, int | None]]]] = {}  # id -> (seq, limits)
        self._paced: dict[str, tuple[str, int | None, int | None]] = {}  # deployment -> (subject, rpm, tpm)

    def checks(self, record: KeyRecord | None, tokens: int) -> list[RateCheck]:
        """The key's and its team's limits (prepared once per key version), charged `tokens`."""
        if record is None:
            return []
        return [filled(RateCheck, (subject, rpm, tpm, tokens)) for subject, rpm, tpm in self.key_limits(record)]

    def key_limits(self, record: KeyRecord) -> list[tuple[str, int | None, int | None]]:
        """(subject, rpm, tpm) of the key's and its team's limits, prepared once per key version."""
        prepared = self._keys.get(record.id)
        if prepared is None or prepared[0] != record.seq:
            prepared = self._keys[record.id] = (record.seq, self._limits_of(record))
        return prepared[1]

    def _limits_of(self, record: KeyRecord) -> list[tuple[str, int | None, int | None]]:
        limits = []
        if record.rpm is not None or record.tpm is not None:
            limits.append((f"key:{record.id}", record.rpm, record.tpm))
        team = self.teams.get(record.team) if record.team else None
        if team is not None and (team.rpm is not None or team.tpm is not None):
            limits.append((f"team:{record.team}", team.rpm, team.tpm))
        return limits

    def pacing(self, candidates: list, tokens: int) -> list[RateCheck]:
        """The deployments (anything with a `.name`) in order, if any of them is paced; else nothing to check."""
        deployments = self.deployments
        if not deployments or not any(c.name in deployments for c in candidates):
            return []
        paced = self._paced
        return [filled(RateCheck, (*(paced.get(c.name) or self._pace(c.name)), tokens)) for c in candidates]

    def _pace(self, name: str) -> tuple[str, int | None, int | None]:
        limit = self.deployments.get(name) or RateLimit()
        found = self._paced[name] = (deployment_subject(name), limit.rpm, limit.tpm)
        return found

    def subject(self, deployment: str) -> str:
        """The rate subject of a deployment ("deployment:<name>"), without building the string each time."""
        return (self._paced.get(deployment) or self._pace(deployment))[0]

    def is_paced(self, deployment: str) -> bool:
        return deployment in self.deployments and self.deployments[deployment].limited

    def describe(self, subject: str, key_names: dict[str, str]) -> str:
        """Words for a subject in an error message: key 'name' (id), team 'name', deployment 'name'."""
        scope, _, owner = subject.partition(":")
        if scope == "key":
            return f"key '{key_names.get(owner, owner)}' ({owner})"
        return f"{scope} '{owner}'"


def deployment_subject(name: str) -> str:
    return f"deployment:{name}"

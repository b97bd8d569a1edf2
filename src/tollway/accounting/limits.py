"""Which rate limits a request counts against: its key's, its team's, and its route group's deployments'.

Limits come from the key record (rpm, tpm), the config's `teams:` and `limits.deployments`. Subjects are
named "key:<id>", "team:<name>", "deployment:<name>"; the counters keep one rolling minute per subject.
"""

from __future__ import annotations

from tollway.accounting.counters import RateCheck
from tollway.accounting.keys import KeyRecord
from tollway.accounting.settings import RateLimit, TeamSettings


class RateLimits:
    def __init__(self, teams: dict[str, TeamSettings], deployments: dict[str, RateLimit]) -> None:
        self.teams = teams
        self.deployments = deployments

    def checks(self, record: KeyRecord | None, tokens: int) -> list[RateCheck]:
        if record is None:
            return []
        checks = []
        if record.rpm is not None or record.tpm is not None:
            checks.append(RateCheck(f"key:{record.id}", record.rpm, record.tpm, tokens))
        team = self.teams.get(record.team) if record.team else None
        if team is not None and (team.rpm is not None or team.tpm is not None):
            checks.append(RateCheck(f"team:{record.team}", team.rpm, team.tpm, tokens))
        return checks

    def pacing(self, candidates: list, tokens: int) -> list[RateCheck]:
        """The deployments (anything with a `.name`) in order, if any of them is paced; else nothing to check."""
        if not any(c.name in self.deployments for c in candidates):
            return []
        checks = []
        for candidate in candidates:
            limit = self.deployments.get(candidate.name) or RateLimit()
            checks.append(RateCheck(deployment_subject(candidate.name), limit.rpm, limit.tpm, tokens))
        return checks

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

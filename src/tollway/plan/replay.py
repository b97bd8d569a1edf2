"""`tollway replay`: walk logged requests through a candidate catalog and routing policy, calling no model.

For each client request in the ledger (answered ones by default), the candidate's own routing pipeline
picks a deployment (replay_decisions.py), the request's real tokens are priced there at its own time,
and the result is summed by route group and by day against what the ledger says it cost
(replay_totals.py). Requests the candidate could not serve are counted by reason: capability, context,
residency, or a model it does not serve at all. The point is to see what a routing change would have saved
last month before making it.

    from tollway.plan.replay import load_candidate, replay_ledger
    candidate = load_candidate(Path("candidate.yaml"))
    totals = replay_ledger(candidate, "ledger.db", since=datetime(2026, 10, 1, tzinfo=timezone.utc))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tollway.catalog import Catalog
from tollway.catalog.errors import CatalogError
from tollway.config import Config, ConfigError, default_ledger_path, load_config
from tollway.plan.ledger_source import open_ledger
from tollway.plan.replay_decisions import Replayer
from tollway.plan.replay_rows import read_logged_requests
from tollway.plan.replay_totals import ReplayTotals, tally
from tollway.plan.scenario import ScenarioError

LEDGER_OPTION = "--ledger"


@dataclass(slots=True)
class Candidate:
    """A candidate config, loaded and checked: what replay routes with."""

    config: Config
    catalog: Catalog
    path: Path

    def replayer(self) -> Replayer:
        """A fresh replayer: live statistics start empty, as in a newly started gateway."""
        return Replayer(self.config, self.catalog, self.path)


def load_candidate(path: Path) -> Candidate:
    """Load and check a candidate tollway.yaml. Raises ScenarioError naming the file and the problem (an
    invalid config, a bad catalog entry, a deployment no price can be found for). Provider API keys are
    not read: replay sends nothing."""
    try:
        config, found = load_config(path)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    try:
        catalog = Catalog.from_config_section({"catalog": config.catalog, "cny_per_usd": config.cny_per_usd})
    except CatalogError as exc:
        raise ScenarioError(f"{found}: {exc}") from None
    candidate = Candidate(config, catalog, found)
    try:
        candidate.replayer()  # builds the route table and checks every deployment can be priced
    except ConfigError as exc:
        raise ScenarioError(f"{found}: {exc}") from None
    return candidate


def default_ledger(config: Config) -> str:
    """The ledger a gateway started with this config writes to, chosen as `serve` chooses: $TOLLWAY_DATABASE_URL,
    its database_url, ledger.path, or the default."""
    import os

    from tollway.config_env import ENV_DATABASE_URL

    url = os.environ.get(ENV_DATABASE_URL) or config.database_url
    if url:
        return url
    return str(config.ledger.path or default_ledger_path())


def replay_ledger(candidate: Candidate, ledger: str, since: datetime | None = None, until: datetime | None = None,
                  include_failed: bool = False, keep_rows: bool = False) -> ReplayTotals:
    """Replay the ledger's client requests in [since, until) under the candidate. Raises ScenarioError when
    the ledger cannot be read or holds a malformed row."""
    reader = open_ledger(ledger, LEDGER_OPTION)
    replayer = candidate.replayer()
    requests = read_logged_requests(reader, since, until, include_failed)

    def decisions():
        for request in requests:
            decision = replayer.decide(request)
            replayer.learn(request)
            yield decision

    return tally(decisions(), replayer.table, keep_rows)

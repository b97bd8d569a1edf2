"""Virtual keys held in process, so authenticating a request never touches the database.

The cache loads every key at start and then asks the store every `refresh_ms` for rows changed since
the last change it saw (one indexed query), so a key created, updated or revoked anywhere is seen by
every replica within that interval. A secret whose id is not cached yet (created a moment ago) triggers
one immediate refresh, shared by concurrent requests and at most one per `MISS_REFRESH_S`, so unknown
ids cannot turn into a flood of queries. Stored teams (teams.py) are read the same way, in the same
refresh, so a team's new budget reaches every replica as fast as a key's.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from tollway.accounting.keys.records import KeyRecord
from tollway.accounting.keys.store import KeyStore
from tollway.accounting.teams import TeamRecord
from tollway.core.background_task import stop_task

log = logging.getLogger("tollway.keys")
MISS_REFRESH_S = 0.05


class KeyCache:
    def __init__(self, store: KeyStore, refresh_s: float,
                 on_change: Callable[[list[KeyRecord]], None] = lambda records: None,
                 on_teams: Callable[[list[TeamRecord]], None] = lambda teams: None) -> None:
        self.store = store
        self.records: dict[str, KeyRecord] = {}
        self.seq = 0
        self.team_seq = 0
        self._on_teams = on_teams
        self._refresh_s = refresh_s
        self._on_change = on_change
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keys")
        self._task: asyncio.Task | None = None
        self._refreshing: asyncio.Future | None = None
        self._last_miss_refresh = 0.0
        self._failing = False

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="key-cache")

    async def stop(self) -> None:
        await stop_task(self._task)
        await asyncio.get_running_loop().run_in_executor(self._executor, self.store.close)
        self._executor.shutdown(wait=True)

    def get(self, key_id: str) -> KeyRecord | None:
        return self.records.get(key_id)

    async def get_or_refresh(self, key_id: str) -> KeyRecord | None:
        """The cached key, or after one (rate-limited, shared) refresh if it is not cached yet."""
        record = self.records.get(key_id)
        if record is not None:
            return record
        loop = asyncio.get_running_loop()
        if self._refreshing is None and loop.time() - self._last_miss_refresh >= MISS_REFRESH_S:
            self._last_miss_refresh = loop.time()
            await self.refresh()
        elif self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        return self.records.get(key_id)

    async def call(self, method: Callable, *args):
        """Run a store method on the store's own thread (the admin API's writes go through here)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, method, *args)

    async def refresh(self) -> None:
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        self._refreshing = asyncio.get_running_loop().create_future()
        try:
            changed, teams = await self.call(self._changes, self.seq, self.team_seq)
        except Exception as exc:  # the store is down: keep serving the keys we know
            if not self._failing:
                log.error("cannot refresh keys from %s (%s); using the %d keys already known", self.store.where,
                          exc, len(self.records))
            self._failing = True
            changed, teams = [], []
        else:
            if self._failing:
                log.warning("key store %s is reachable again", self.store.where)
            self._failing = False
        finally:
            self._refreshing.set_result(None)
            self._refreshing = None
        self.apply(changed)
        for team in teams:
            self.team_seq = max(self.team_seq, team.seq)
        self.apply_teams(teams)

    def _changes(self, seq: int, team_seq: int) -> tuple[list[KeyRecord], list[TeamRecord]]:
        return self.store.changed_since(seq), self.store.teams_changed_since(team_seq)

    def apply_teams(self, changed: list[TeamRecord]) -> None:
        """Hand changed stored teams on (also used right after an admin API write, which leaves `team_seq`
        alone: a change another replica committed just before it is still read at the next refresh)."""
        if changed:
            self._on_teams(changed)

    def apply(self, changed: list[KeyRecord]) -> None:
        """Take changed rows into the cache (also used right after an admin API write)."""
        fresh = []
        for record in changed:
            current = self.records.get(record.id)
            if current is None or current.seq < record.seq:
                self.records[record.id] = record
                fresh.append(record)
            self.seq = max(self.seq, record.seq)
        if fresh:
            self._on_change(fresh)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()

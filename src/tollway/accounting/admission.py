"""Admission: who may send a request, and whether it fits their limits and budget.

A request meets admission twice around routing, one call each: `admit` before the body is read (who is
calling, so a bad key costs nothing, and which route groups a budget brownout moves the key to), and
`reserve` once the request is parsed and planned (the most it can cost is held against budgets, its
estimated tokens against rate limits, and the plan comes back in the order to try, pacing's deployment
first). `settle` follows exactly once for every reserved request, success or failure, with its ledger row
and its exact cost (the real cost and tokens replace the holds; the cost is never read back from the
row's text). Keys are read from an in-process cache (key_cache.py); counters live in this process or in
Redis (resilient_counters.py), one call to admit and one to settle. See docs/budgets.md for the model and its guarantees.

All three run on every request, so what can be prepared is: a presented secret that verified once maps
straight to its key (until any key changes), a key's limits and budget names are built once per key
version and period, hold prices once per minute (holds.py), and money stays in integer nano-dollars.
With counters in this process, a key's windows and budgets are resolved once into objects reserve and
settle charge directly (prepared_admission.py); a refusal or anything unusual takes the generic path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

from aiohttp import web

from tollway.accounting import refusals
from tollway.accounting.brownouts import Brownouts
from tollway.accounting.budgets import BudgetLine, Budgets
from tollway.accounting.counters.base import OK, AdmitRequest, Decision
from tollway.accounting.counters.resilient import CountersUnavailable, ResilientCounters
from tollway.accounting.credentials import Presented, bearer_token, resolve_admin_key
from tollway.accounting.holds import HoldCalculator
from tollway.accounting.keys.cache import KeyCache
from tollway.accounting.keys.lifecycle import admitted
from tollway.accounting.keys.records import KeyRecord, key_id_of
from tollway.accounting.keys.store import open_key_store
from tollway.accounting.limits import RateLimits
from tollway.accounting.pacing_order import paced_first
from tollway.accounting.prepared_admission import InProcessAdmission
from tollway.accounting.settlement import settlement
from tollway.accounting.teams import TeamDirectory, TeamRecord
from tollway.accounting.tickets import ANONYMOUS, Key, Ticket
from tollway.catalog import Catalog
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config, ConfigError, default_ledger_path, resolve_client_keys
from tollway.core.errors import GatewayError, unauthorized
from tollway.core.money import nano_of, to_nano, usd_text
from tollway.core.process_ids import ProcessIds
from tollway.core.redact import redact_url
from tollway.core.request import ClientRequest
from tollway.ledger.schema import LedgerRow

log = logging.getLogger("tollway.admission")
STATUS_REFRESH_S = 1.0
STATUS_CHUNK = 500           # budgets read per Redis script call
STATUS_BUDGETS_PER_S = 5000  # background refresh rate cap per replica
MAX_REMEMBERED_SECRETS = 10_000  # verified secrets kept (secret -> key); the map is emptied when full


class Admission:
    def __init__(self, config: Config, pricer: DeploymentPricer | None = None) -> None:
        self.config = config
        self._static = resolve_client_keys(config.server)
        self.admin_key = resolve_admin_key(config.server)
        pricer = pricer or DeploymentPricer(Catalog.from_config_section(config))
        self.holds = HoldCalculator(config, pricer, config.budgets.tokens_per_image)
        self.teams = TeamDirectory(config.teams)  # the config's teams and the team store's
        self.limits = RateLimits(self.teams, config.limits.deployments)
        self.budgets = Budgets(config.budgets, self.teams)
        timeout_s = config.budgets.reservation_timeout_s or config.server.request_deadline_s + 60
        self.hold_ms = int(timeout_s * 1000)
        self.keys_path = config.keys.path or config.ledger.path or default_ledger_path()
        self.cache: KeyCache | None = None
        self.counters = ResilientCounters(None, fail_open=False)
        self.events: deque[dict] = deque(maxlen=1000)
        self._keys: dict[str, Key] = {}
        self._verified: dict[str, Key] = {}   # presented secret -> its key; emptied whenever a key changes
        self._tickets = ProcessIds()  # unique across workers and replicas sharing Redis
        self._brownouts = Brownouts(config.budgets, self.budgets, self._emit)
        self._listeners: list[Callable[[dict], None]] = []
        self._settling: set[asyncio.Task] = set()
        self._in_process = InProcessAdmission(self.limits, self.budgets)
        self._status_task: asyncio.Task | None = None

    def reconfigure(self, config: Config, pricer: DeploymentPricer) -> None:
        """Take a reloaded config's client keys, limits, budgets and hold prices, keeping what was counted:
        the counters (rate windows, budget spend, in this process or in Redis), the key cache and the key
        store stay, so a reload never resets a window or forgives spend. The key store, Redis and the
        ledger are where they were at start-up (a change to `database_url`, `redis_url` or `keys` needs a
        restart)."""
        static = resolve_client_keys(config.server)  # may raise ConfigError: nothing has changed yet
        admin_key = resolve_admin_key(config.server)
        teams = self.teams.with_config(config.teams)
        limits = RateLimits(teams, config.limits.deployments)
        budgets = Budgets(config.budgets, teams)
        holds = HoldCalculator(config, pricer, config.budgets.tokens_per_image)
        timeout_s = config.budgets.reservation_timeout_s or config.server.request_deadline_s + 60
        self.config, self._static, self.admin_key, self.teams = config, static, admin_key, teams
        self.holds, self.limits, self.budgets, self.hold_ms = holds, limits, budgets, int(timeout_s * 1000)
        self._brownouts = Brownouts(config.budgets, budgets, self._emit)
        self._in_process = InProcessAdmission(limits, budgets)  # its keys are rebuilt on the same counters
        self._verified.clear()  # a client key the new config dropped must not stay remembered

    async def start(self, app: web.Application | None = None) -> None:
        """Load keys and connect to Redis; called at gateway start-up."""
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(None, open_key_store, self.config.database_url, self.keys_path)
        except Exception as exc:
            raise ConfigError(f"cannot open the key store: {exc}") from None
        self.cache = KeyCache(store, self.config.keys.refresh_ms / 1000, self._keys_changed, self.teams_changed)
        await self.cache.start()
        if self.config.redis_url:
            from tollway.accounting.counters.redis import RedisCounters, connect

            where = redact_url(self.config.redis_url)
            self.counters = ResilientCounters(RedisCounters(connect(self.config.redis_url)),
                                              self.config.on_redis_failure == "open", where, self._emit)
            revoked = [r.id for r in self.cache.records.values() if r.revoked]
            await self.counters.revoke(revoked)
        self._status_task = asyncio.create_task(self._refresh_status(), name="budget-status")
        log.info("admission: %d virtual keys from %s; counters %s", len(self.cache.records), store.where,
                 f"in Redis at {redact_url(self.config.redis_url)}" if self.config.redis_url else "in process")

    async def stop(self) -> None:
        """Finish settling, then release connections; called after in-flight requests finished."""
        if self._status_task is not None:
            self._status_task.cancel()
            await asyncio.gather(self._status_task, return_exceptions=True)
        if self._settling:
            await asyncio.wait(list(self._settling), timeout=10)
        await self.counters.close()
        if self.cache is not None:
            await self.cache.stop()

    def routes(self) -> list[web.RouteDef]:
        """The admin API under /admin/ (keys, budgets)."""
        from tollway.accounting.admin_api import admin_routes

        return admin_routes(self)

    def subscribe(self, listener: Callable[[dict], None]) -> None:
        """Call `listener(event)` for every alert event (soft thresholds, Redis outages, brownouts)."""
        self._listeners.append(listener)

    async def admit(self, request: Presented) -> tuple[Key, Mapping[str, str]]:
        """The step before routing: the caller (GatewayError 401/403 as `authenticate`), and the route
        groups it is moved to now: requested group -> group to serve it from, empty unless a budget
        brownout covers the key or its team."""
        key = await self.authenticate(request)
        return key, self._brownouts.moves(key)

    async def authenticate(self, request: Presented) -> Key:
        """Raise GatewayError(401) for a missing, wrong or revoked key."""
        token = bearer_token(request)
        key = self._verified.get(token)
        if key is not None:
            return key
        key_id = key_id_of(token) if token else None
        if key_id is not None and self.cache is not None:
            record = await self.cache.get_or_refresh(key_id)
            rememberable = admitted(record, token)
            assert record is not None, "admitted() refuses a missing record"
            key = self._keys.get(record.id) or self._key_of(record)
            if not rememberable:
                return key
            return self._remember_secret(token, key)
        if self._static:
            if token in self._static:
                return ANONYMOUS
            raise unauthorized()
        if self._keys_required():
            raise unauthorized()
        return ANONYMOUS

    async def reserve(self, key: Key, creq: ClientRequest, group: str, deployments: list | None = None) -> Ticket:
        """The step after planning: hold the most this request can cost; raise GatewayError(429
        budget_exceeded / rate_limited) if it can't.

        `deployments` is the routed plan, in order: pacing charges the first of them with room, and the
        ticket's `plan` is `deployments` with that one moved to the front. Without it, the group's
        configured order is paced and `plan` is empty."""
        plan = [] if deployments is None else deployments
        record = key.record
        if record is not None:
            if record.default_max_tokens is not None and creq.endpoint != "embeddings" and creq.max_tokens is None:
                creq.body["max_tokens"] = record.default_max_tokens  # sent upstream as is: the hold stays exact
            if record.models or record.residency:
                self._check_permissions(record, creq, group)
        elif not self.limits.deployments and not self.budgets.org_configured:
            return Ticket(key, plan=plan)
        order = self.holds.groups.get(group, []) if deployments is None else deployments
        hold = self.holds.hold(creq, group)
        tokens = hold.estimated_tokens
        if self.counters.redis is None:  # in process: the prepared path, unless the request does not fit
            local = self.counters.local
            prepared = self._in_process.key(record, local, group, creq.body)
            pacing = self._in_process.pacing(order, local)
            if pacing is None and prepared.empty:
                return Ticket(key, plan=plan)
            ticket = next(self._tickets)
            decision = local.admit_prepared(prepared, pacing, order, ticket, tokens, hold.nano, self.hold_ms,
                                            self._brownouts.configured)
            if decision is not None:
                checks = prepared.budget_checks
                if decision.soft_crossed or (self._brownouts.configured and checks):
                    self._brownouts.watch(self.budgets.lines(record, group, creq.body), checks, decision)
                paced = order[decision.paced].name if decision.paced >= 0 else ""
                return Ticket(key, hold.nano if checks else 0, tokens, ticket, "local", prepared.rate_checks, checks,
                              paced, prepared, paced_first(paced, plan))
        budgets = self.budgets.key_checks(record, hold.nano, group, creq.body)
        request = AdmitRequest(next(self._tickets), record.id if record is not None and self.counters.shared else "",
                               self.limits.checks(record, tokens), budgets, self.limits.pacing(order, tokens),
                               self.hold_ms)
        if request.empty:
            return Ticket(key, plan=plan)
        decision, backend = self.counters.admit_in_process(request), "local"
        if decision is None:
            try:
                decision, backend = await self.counters.admit(request)
            except CountersUnavailable as exc:
                raise refusals.limits_unavailable(str(exc)) from None
        if decision.outcome != OK:
            raise self._refusal(decision, request, self.budgets.lines(record, group, creq.body), creq, order, hold.nano,
                                group)
        if decision.soft_crossed or (self._brownouts.configured and budgets):
            self._brownouts.watch(self.budgets.lines(record, group, creq.body), budgets, decision)
        paced = order[decision.paced].name if request.pacing and decision.paced >= 0 else ""
        return Ticket(key, hold.nano if budgets else 0, tokens, request.ticket, backend, request.rates, budgets, paced,
                      None, paced_first(paced, plan))

    async def settle(self, ticket: Ticket, row: LedgerRow, cost: Decimal) -> None:
        """Replace the holds with the real tokens of `row` and its exact `cost` (USD, the amount the row's
        text was made from), in the background; never raises."""
        if not ticket.backend:
            return
        if ticket.backend == "local" and not self.counters.shared:  # nothing to wait for: no task
            try:
                nano = nano_of(cost) if cost else 0
                if not self._in_process.settle(ticket, row, self.counters.local, nano):
                    self.counters.settle_in_process(settlement(ticket, row, nano, self.limits))
            except Exception:
                log.exception("settling request %s failed; its hold is released when it expires", row.id)
            return
        task = asyncio.create_task(self._settle(ticket, row, cost))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def brownout(self, key_id: str, reason: str) -> None:
        """Serve this key from the cheaper route groups of `budgets.brownout` until the end of the UTC day."""
        self._brownouts.start(key_id, reason)

    def budget_status(self) -> list[dict]:
        """Every key and team budget: window, limit_usd, spent_usd, reserved_usd, resets_at (refreshed each second)."""
        state_of = self.counters.state_of
        names = {r.id: r.name for r in self.cache.records.values()} if self.cache else {}
        return [self.budgets.status(line, state_of(self.budgets.counter_name(line)), names.get(line.owner, ""))
                for line in self._all_budget_lines()]

    async def budget_status_now(self) -> list[dict]:
        """budget_status() after reading the counters (a Redis call per STATUS_CHUNK budgets): what the admin
        API shows."""
        names = [self.budgets.counter_name(line) for line in self._all_budget_lines()]
        for start in range(0, len(names), STATUS_CHUNK):  # short scripts: Redis serves admissions in between
            await self.counters.refresh(names[start:start + STATUS_CHUNK])
        return self.budget_status()

    def teams_changed(self, records: list[TeamRecord]) -> None:
        """Take stored teams that changed (the key cache's refresh, or the admin API right after a write):
        keys of those teams count against the new limits from their next request."""
        if self.teams.take(records):
            self.budgets.forget()
            self.limits = RateLimits(self.teams, self.config.limits.deployments)
            self._in_process = InProcessAdmission(self.limits, self.budgets)

    def keys_required(self) -> bool:
        return self._keys_required()

    def key_changed(self, record: KeyRecord) -> None:
        """Take a key the admin API just wrote into the cache, without waiting for the next refresh."""
        if self.cache is not None:
            self.cache.apply([record])

    # -- internals -------------------------------------------------------------------------------------

    def _keys_required(self) -> bool:
        mode = self.config.keys.required
        return mode == "always" or (mode == "auto" and self.cache is not None and bool(self.cache.records))

    def _key_of(self, record: KeyRecord) -> Key:
        key = Key(record.id, record.team, frozenset(record.models) if record.models else None,
                  frozenset(record.residency) if record.residency else None, record.name, record)
        self._keys[record.id] = key
        return key

    def _remember_secret(self, token: str, key: Key) -> Key:
        """Let this secret skip hashing next time; only verified secrets of live keys get here."""
        if len(self._verified) >= MAX_REMEMBERED_SECRETS:
            self._verified.clear()
        self._verified[token] = key
        return key

    def _keys_changed(self, records: list[KeyRecord]) -> None:
        self._verified.clear()  # a revoked or edited key must be looked up (and verified) again
        revoked = []
        for record in records:
            self._key_of(record)
            if record.revoked:
                revoked.append(record.id)
        if revoked and self.counters.shared:
            task = asyncio.get_running_loop().create_task(self.counters.revoke(revoked))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)

    def _check_permissions(self, record: KeyRecord, creq: ClientRequest, group: str) -> None:
        if record.models and creq.model not in record.models and group not in record.models:
            raise refusals.model_not_allowed(creq.model, list(record.models))
        if record.residency:
            where = [c.jurisdiction for c in self.holds.groups.get(group, [])]
            if where and not set(where) & set(record.residency):
                raise refusals.residency_not_met(creq.model, list(record.residency), where)

    def _refusal(self, decision: Decision, request: AdmitRequest, lines: list[BudgetLine], creq: ClientRequest,
                 candidates: list, hold_nano: int, group: str) -> GatewayError:
        names = {r.id: r.name for r in self.cache.records.values()} if self.cache else {}
        if decision.outcome == "revoked":
            return refusals.key_revoked()
        if decision.outcome == "budget":
            line, state = lines[decision.index], decision.budgets[0]
            room = to_nano(line.limit_usd) - state.spent_nano - state.reserved_nano
            fits = None
            if room > 0 and creq.endpoint != "embeddings":  # room left, but not for the worst case
                fits = refusals.MaxTokensFit(self.holds.largest_max_tokens(creq, group, room),
                                             creq.max_tokens is not None, usd_text(room))
            return refusals.budget_exceeded(
                line.who(names), line.window, usd_text(to_nano(line.limit_usd)), usd_text(state.spent_nano),
                usd_text(state.reserved_nano), usd_text(hold_nano),
                self.budgets.resets_at(line).isoformat().replace("+00:00", "Z"), fits)
        if decision.outcome == "pacing":
            return refusals.deployments_busy(creq.model, [c.name for c in candidates], decision.retry_after_ms)
        check = request.rates[decision.index]
        limit = check.rpm if decision.outcome == "rpm" else check.tpm
        return refusals.rate_limited(self.limits.describe(check.subject, names), decision.outcome, limit or 0,
                                     decision.retry_after_ms, check.tokens)

    async def _settle(self, ticket: Ticket, row: LedgerRow, cost: Decimal) -> None:
        try:
            await self.counters.settle(settlement(ticket, row, nano_of(cost) if cost else 0, self.limits), ticket.backend)
        except Exception:
            log.exception("settling request %s failed; its hold is released when it expires", row.id)

    def _all_budget_lines(self) -> list[BudgetLine]:
        records = self.cache.records.values() if self.cache else ()
        return [line for r in records if not r.revoked for line in self.budgets.status_lines(r)] \
            + self.budgets.shared_lines()

    async def _refresh_status(self) -> None:
        """Keep budget_status() within about a second of the shared counters (slower with very many keys)."""
        while True:
            budgets = sum(len(self.budgets.status_lines(r)) for r in self.cache.records.values()) if self.cache else 0
            await asyncio.sleep(max(STATUS_REFRESH_S, budgets / STATUS_BUDGETS_PER_S))
            try:
                await self.budget_status_now()
            except Exception:
                log.exception("refreshing budget status failed")

    def _emit(self, event: dict) -> None:
        event = {"ts": datetime.now(timezone.utc).isoformat(), **event}
        self.events.append(event)
        log.warning("alert: %s", event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("alert listener %r failed", listener)


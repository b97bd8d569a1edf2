"""The observer: sees every finished request's ledger row, and turns rows into metrics, alerts and views.

`record(row, cost)` runs on the request path, so it only appends the row and its exact cost (the Decimal
the row's text was made from, so no figure parses text back) to a queue. A background task (and every
/metrics scrape, so a scrape is always current) drains the queue, reads its rows once into sums per alike
group (observe/row_batch.py), and folds those into the Prometheus figures, the dashboard's figures, the
spend windows and baselines, the drift guards, the request log and the optional trace exporter. At
start-up it reads the last weeks of the ledger back (baselines, dashboard window, drift references) in a
thread, and checks whether a config change repointed a public model to another price class since the
last start.

It is given what it reads (its settings, the route table, the pricer, admission's budget view, the ledger,
a reading of requests in flight), not the gateway, so it can be built and tested without one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tollway.accounting.credentials import resolve_admin_key
from tollway.config import ConfigError, default_ledger_path, resolve_client_keys
from tollway.ledger.schema import LedgerRow
from tollway.observe import logs, route_snapshot
from tollway.observe.admin_auth import AdminGate
from tollway.observe.alerts import AlertCenter
from tollway.observe.anomalies import SpendWatch
from tollway.observe.budget_view import fetch_budgets
from tollway.observe.dashboard import Dashboard
from tollway.observe.drift import DriftWatch
from tollway.observe.history import load_history
from tollway.observe.ledger_rows import LedgerReadError
from tollway.observe.live_figures import LiveFigures
from tollway.observe.metrics import GatewayMetrics, make_registry
from tollway.observe.row_batch import RowBatch
from tollway.observe.scrape_auth import ScrapeGate, ScrapeTokenError, scrape_token
from tollway.observe.tracing import RequestTracer
from tollway.observe.webhook import WebhookConfigError, WebhookSender, webhook_url
from tollway.observe.worker_metrics import fleet_dir

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.catalog.deployment_prices import DeploymentPricer
    from tollway.config import ServerSettings
    from tollway.ledger.drain import LedgerDrain
    from tollway.observe.settings import ObserveSettings
    from tollway.routing.table import RouteTable

log = logging.getLogger("tollway.observe")
_FINGERPRINT = "system_fingerprint"
_HAS_FINGERPRINT = _FINGERPRINT in LedgerRow.__dataclass_fields__  # set by the handler when it is recorded
BUDGET_POLL_S = 5.0
DRAIN_CHUNK = 200  # rows folded between yields to the event loop (a few microseconds each)


class Observer:
    def __init__(self, settings: ObserveSettings, server: ServerSettings, table: RouteTable,
                 pricer: DeploymentPricer, admission: Admission | None, ledger: LedgerDrain | None,
                 in_flight: Callable[[], int] | None = None) -> None:
        """`server`: where the admin and client keys are named (kept out of logs); `in_flight`: a reading
        of requests between arrival and their row (None: not shown); `admission`: whose `budget_status()`
        the budget gauges show and whose brownouts alerts may start."""
        self.settings = settings
        self.server = server
        self.table = table
        self.pricer = pricer
        self.admission = admission
        self.ledger = ledger
        self.in_flight = in_flight
        try:
            url = webhook_url(settings.alerts.webhook)
            token = scrape_token(settings.metrics)
        except (WebhookConfigError, ScrapeTokenError) as exc:
            raise ConfigError(str(exc)) from None
        self.scrape_gate = ScrapeGate(token)
        self._admin_key = resolve_admin_key(server)
        self.metrics = GatewayMetrics(settings.metrics, table.deployments, ledger, in_flight)
        self.live = LiveFigures(settings.dashboard.window_h, settings.dashboard.latency_samples)
        self.spend = SpendWatch(settings.alerts)
        self.drift = DriftWatch.for_alerts(settings.alerts)
        self.webhook = WebhookSender(url, settings.alerts.webhook) if url else None
        self.alerts = AlertCenter(self.metrics, settings.alerts.keep_recent, self.webhook, admission,
                                  settings.alerts.brownout)
        self.gate = AdminGate(self._admin_key)
        self.dashboard = Dashboard(self.gate, self.dashboard_data, settings.dashboard.refresh_s)
        self._registry = make_registry(self.metrics, self.drain)
        self._secrets = self._known_secrets(url) + ([token] if token else [])
        self._pending: deque[LedgerRow] = deque()
        self._costs: deque[Decimal] = deque()  # each pending row's exact cost, in step with _pending
        self._held: deque[tuple[RowBatch, float]] | None = deque()  # drains folded while history loads
        self._tracer: RequestTracer | None = None
        self._redactor: logs.SecretRedactor | None = None
        self._task: asyncio.Task | None = None
        self._history_task: asyncio.Task | None = None
        self.history_rows = 0

    def record(self, row: LedgerRow, cost: Decimal) -> None:
        """Called once per request, after its row is queued, with its exact cost (the amount `row.cost_usd`
        says). Must be cheap and never raise."""
        self._pending.append(row)
        self._costs.append(cost)

    def take_table(self, table: RouteTable, pricer: DeploymentPricer) -> None:
        """A reloaded config's deployments: the breaker gauges and dashboard show them, and their secrets
        join those kept out of logs (the old ones stay: a request in flight may still log on them)."""
        self.table, self.pricer = table, pricer
        self.metrics.deployments = table.deployments
        if self._redactor is not None:
            self._redactor.secrets = logs.SecretRedactor([*self._redactor.secrets, *self._known_secrets(None)]).secrets

    def routes(self) -> list[web.RouteDef]:
        routes = self.dashboard.routes() if self.settings.dashboard.enabled else []
        if self.settings.metrics.enabled:
            routes.append(web.get("/metrics", self._metrics))
        return routes

    async def start(self, app: web.Application) -> None:
        self._redactor = logs.install(self.settings.logs, self._secrets)
        self._tracer = RequestTracer.create(self.settings.tracing)
        if self.webhook is not None:
            self.webhook.start()
        self._check_repoints()
        started = datetime.now(UTC)
        self._history_task = asyncio.create_task(self._load_history(started), name="observe-history")
        self._task = asyncio.create_task(self._run(), name="observe")

    async def stop(self) -> None:
        for task in (self._task, self._history_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self.drain()
        if self._held is None:
            self._evaluate(time.time())
        if self.webhook is not None:
            await self.webhook.stop()
        if self._tracer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._tracer.shutdown)
        if self._redactor is not None:
            logs.uninstall(self._redactor)

    def drain(self, limit: int | None = None) -> int:
        """Fold recorded rows (all, or up to `limit`) into the figures; runs in the event loop. Returns
        how many rows are still waiting."""
        pending, costs = self._pending, self._costs
        if limit is None or limit >= len(pending):
            rows, amounts = list(pending), list(costs)
            pending.clear()
            costs.clear()
        else:
            rows = [pending.popleft() for _ in range(limit)]
            amounts = [costs.popleft() for _ in range(limit)]
        if rows:
            self._fold(rows, amounts, time.time())
        return len(pending)

    def _fold(self, rows: list[LedgerRow], costs: list[Decimal], now: float) -> None:
        """Each row is read once into a batch (see row_batch.py); each consumer then takes the whole batch.
        A malformed row is logged and left out; a consumer that fails does not stop the others."""
        batch = RowBatch()
        for row, cost in zip(rows, costs):
            try:
                batch.add(row, cost)
            except Exception:  # one odd row must not stop the observer
                log.exception("could not fold request %s into the figures", getattr(row, "id", "?"))
        self._guarded(self.metrics.add_batch, batch)
        if logs.request_log.isEnabledFor(logging.INFO) or logs.route_log.isEnabledFor(logging.DEBUG):
            for row in batch.rows:
                self._guarded(logs.log_request, row)
        if self._tracer is not None:
            for row in batch.rows:
                self._guarded(self._tracer.export, row)
        if self._held is not None:
            self._held.append((batch, now))
            return
        self._guarded(self._analyse_batch, batch, now)

    def _guarded(self, fold, *args) -> None:
        try:
            fold(*args)
        except Exception:
            log.exception("could not fold requests into the figures (%s)", getattr(fold, "__qualname__", fold))

    def _analyse_batch(self, batch: RowBatch, now: float) -> None:
        self.live.add_batch(batch, now)
        self.spend.observe_batch(batch, now)
        for row, cost in batch.answers:
            fingerprint = getattr(row, _FINGERPRINT) if _HAS_FINGERPRINT else ""
            for alert in self.drift.observe_answer(row, cost, fingerprint or ""):
                self.alerts.raise_alert(alert)

    async def _run(self) -> None:
        settings = self.settings
        last_evaluation = last_budgets = 0.0
        while True:
            await asyncio.sleep(settings.drain_every_s)
            while self.drain(DRAIN_CHUNK):
                await asyncio.sleep(0)  # let requests run between chunks of a big backlog
            now = time.time()
            if self._held is None and settings.alerts.enabled and now - last_evaluation >= settings.alerts.evaluate_every_s:
                last_evaluation = now
                self._evaluate(now)
            if now - last_budgets >= BUDGET_POLL_S:
                last_budgets = now
                self.metrics.budgets = await fetch_budgets(self.admission)

    def _evaluate(self, now: float) -> None:
        if not self.settings.alerts.enabled:
            return
        for alert in self.spend.evaluate(now):
            self.alerts.raise_alert(alert)

    async def _load_history(self, until: datetime) -> None:
        """Read the ledger's past in a thread; rows that finish meanwhile wait in `_held`, then follow it."""
        path = self._ledger_path()
        try:
            loaded = await asyncio.get_running_loop().run_in_executor(
                None, load_history, path, self.settings, until, getattr(self.ledger, "url", None))
        except LedgerReadError as exc:
            log.warning("no ledger history for baselines and the dashboard: %s", exc)
        else:
            self.live, self.spend.history, self.drift = loaded.live, loaded.hourly, loaded.drift
            self.history_rows = loaded.window_rows
            log.info("observer: read %d hourly sums for baselines and %d rows of the last %d h from %s",
                     loaded.hourly_groups, loaded.window_rows, self.settings.dashboard.window_h, loaded.source)
        held, self._held = self._held or deque(), None
        for batch, now in held:  # drains folded while history loaded (rare: the first seconds after start)
            self._guarded(self._analyse_batch, batch, now)

    def _ledger_path(self) -> Path:
        return Path(getattr(self.ledger, "path", None) or default_ledger_path())

    def _check_repoints(self) -> None:
        path = route_snapshot.state_path(self._ledger_path())
        current = route_snapshot.current_targets(self.table, self.pricer, datetime.now(UTC))
        previous = route_snapshot.load_targets(path)
        if previous is not None and self.settings.alerts.enabled:
            for alert in route_snapshot.repoint_alerts(previous, current,
                                                       self.settings.alerts.drift.repoint_price_factor):
                self.alerts.raise_alert(alert)
        try:
            route_snapshot.save_targets(path, current)
        except OSError as exc:
            log.warning("cannot write the route snapshot %s: %s", path, exc.strerror)

    async def _metrics(self, request: web.Request) -> web.Response:
        refused = self.scrape_gate.refusal(request)
        if refused is not None:
            return refused
        return web.Response(body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def dashboard_data(self) -> dict:
        """Everything /dashboard/data.json returns (see docs/observability.md)."""
        self.drain()
        now = time.time()
        return {
            "generated_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "window_h": self.settings.dashboard.window_h,
            "history_loaded": self._held is None,
            "worker": os.getpid() if fleet_dir() is not None else None,  # figures are this worker's own
            **self.live.snapshot(now),
            "in_flight": self.in_flight() if self.in_flight is not None else 0,
            "breakers": [{"deployment": name, "provider": dep.provider, "state": dep.breaker.state,
                          "opened": dep.breaker.opened_count} for name, dep in self.table.deployments.items()],
            "budgets": None if self.metrics.budgets is None else [b.to_json() for b in self.metrics.budgets],
            "alerts": [alert.to_json() for alert in self.alerts.recent],
        }

    def _known_secrets(self, webhook: str | None) -> list[str]:
        secrets = [webhook or "", self._admin_key or ""]
        for dep in self.table.deployments.values():
            secrets.extend(dep.secrets())
        try:
            secrets += list(resolve_client_keys(self.server))
        except ConfigError:
            pass  # admission reports a missing client key env var
        return [s for s in secrets if s]




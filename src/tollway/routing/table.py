"""The routing table: every public model name resolved, at config load, to its deployments.

Everything a request needs to pick and call a deployment (URL, auth header, limits, breaker, live
statistics, capabilities) is computed once here, so the hot path does dictionary lookups only. A
deployment's facts come from its config entry first and the catalog second (context window,
capabilities, strong_in), so a config names only what differs from the published facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tollway.config import Config, ConfigError, Deployment, Provider, RouteGroup, resolve_api_keys
from tollway.providers.dialect import Dialect
from tollway.providers.registry import DIALECTS
from tollway.routing.breaker import CircuitBreaker
from tollway.routing.key_ring import KeyRing, ProviderKey
from tollway.routing.live_stats import DeploymentStats
from tollway.routing.strategies.base import Strategy, StrategyOptions
from tollway.routing.strategies.registry import DEFAULT, STRATEGIES

if TYPE_CHECKING:
    from tollway.catalog import Catalog
    from tollway.routing.hedging import HedgeBudget
    from tollway.routing.spillover import BackendLoad
    from tollway.upstream.http_client import HttpClient, Target

DEFAULT_CONTEXT_WINDOW = 8192


@dataclass(slots=True, eq=False)
class RoutedDeployment:
    """A deployment ready to be called: its provider's facts joined with its own."""

    name: str
    provider: str
    kind: str
    dialect: Dialect                      # resolved once here: the request path reads its attributes
    jurisdiction: str
    upstream_model: str
    base_url: str
    headers: dict[str, str] = field(repr=False)  # holds the provider key: never in a repr or a log
    context_window: int
    max_output: int
    capabilities: frozenset[str]
    connect_s: float
    first_byte_s: float
    between_chunks_s: float
    response_s: float
    breaker: CircuitBreaker
    config: Deployment
    launch: str | None = None
    client_timeout: object | None = None  # aiohttp.ClientTimeout built on first use
    same_provider: list["RoutedDeployment"] = field(default_factory=list)  # incl. itself: one account, one balance
    http_targets: dict = field(default_factory=dict)  # (endpoint, base_url) -> prepared upstream request head
    capabilities_known: bool = True       # False: neither the config nor the catalog lists them; not filtered
    strong_in: frozenset[str] = frozenset()
    self_hosted: bool = False
    stats: DeploymentStats = field(default_factory=DeploymentStats)
    in_flight: int = 0                    # this process's attempts running on it now
    backend_load: "BackendLoad | None" = None  # last scraped queue/KV metrics (self-hosted only)
    region: str | None = None             # the provider's `region:` (prices that differ by region)
    secret: str = field(default="", repr=False)  # the provider's first key, whatever header carries it
    api_version: str | None = None        # the provider's `api_version:` (Azure's query, Anthropic's header)
    keys: KeyRing | None = None           # the provider's keys, shared by its deployments; None: it takes none

    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/{self.dialect.path(endpoint, self.upstream_model, self.api_version)}"

    def target(self, endpoint: str, client: "HttpClient", key: ProviderKey | None = None) -> "Target":
        """The upstream client's prepared target for this endpoint (sent with `key`), built on first use."""
        cache_key = (endpoint, self.base_url, key)
        target = self.http_targets.get(cache_key)
        if target is None:
            headers = self.headers if key is None else {**self.headers, **key.headers}
            target = self.http_targets[cache_key] = client.target(self.url(endpoint), headers)
        return target

    def secrets(self) -> list[str]:
        """Every key this deployment may send: what redaction must hide."""
        if self.keys is not None:
            return self.keys.secrets()
        return [self.secret] if self.secret else []

    def metrics_url(self) -> str:
        """Where a self-hosted backend publishes Prometheus metrics: configured, or next to its /v1."""
        if self.config.metrics_url:
            return self.config.metrics_url
        return f"{self.base_url.removesuffix('/v1')}/metrics"


_DEFAULT_STRATEGY = STRATEGIES[DEFAULT]


@dataclass(slots=True)
class RouteGroupEntry:
    name: str
    deployments: list[RoutedDeployment]
    strategy: Strategy = _DEFAULT_STRATEGY
    aliases: list[str] = field(default_factory=list)
    settings: RouteGroup | None = None    # None for a deployment's own aliases: priority, no options
    strategy_options: StrategyOptions = field(default_factory=_DEFAULT_STRATEGY.options)
    fixed_order: str | None = None        # the route reason when ranked as configured whatever the request
    shadow_target: RoutedDeployment | None = None
    classifier: RoutedDeployment | None = None
    hedge_budget: "HedgeBudget | None" = None
    residency_answers: dict = field(default_factory=dict)  # the planner's residency stage, per key and header

    @property
    def options(self) -> RouteGroup:
        settings = self.settings
        if settings is None:
            settings = self.settings = RouteGroup(deployments=[d.name for d in self.deployments])
        return settings


class RouteTable:
    """Public model name -> route group; built once per config."""

    def __init__(self, config: Config, catalog: "Catalog | None" = None, resolve_secrets: bool = True) -> None:
        """`catalog` fills facts the config leaves out; `resolve_secrets=False` (for `tollway route --explain`)
        builds the table without reading provider keys."""
        self.key_rings: dict[str, KeyRing] = _key_rings(config) if resolve_secrets else {}
        self.deployments: dict[str, RoutedDeployment] = {
            name: _routed(name, dep, config.providers[dep.provider], config, catalog, self.key_rings.get(dep.provider))
            for name, dep in config.deployments.items()
        }
        for dep in self.deployments.values():
            dep.same_provider = [d for d in self.deployments.values() if d.provider == dep.provider]
        self.groups: dict[str, RouteGroupEntry] = {}
        self._by_public_name: dict[str, RouteGroupEntry] = {}
        for name, group in config.route_groups.items():
            self._add(self._group(name, group), [name, *group.aliases])
        for name, configured in config.deployments.items():
            if configured.aliases:
                self._add(RouteGroupEntry(name, [self.deployments[name]], aliases=list(configured.aliases)),
                          configured.aliases)

    def _group(self, name: str, group: RouteGroup) -> RouteGroupEntry:
        from tollway.routing.hedging import HedgeBudget  # routing modules import the table, not the reverse

        entry = RouteGroupEntry(name, [self.deployments[d] for d in group.deployments], STRATEGIES[group.strategy],
                                list(group.aliases), group, group.strategy_options)
        if group.shadow is not None:
            entry.shadow_target = self._reference(f"route_groups.{name}.shadow.deployment", group.shadow.deployment)
        if group.complexity.classifier == "model" and group.complexity.deployment is not None:
            entry.classifier = self._reference(f"route_groups.{name}.complexity.deployment", group.complexity.deployment)
        if group.hedge is not None:
            entry.hedge_budget = HedgeBudget(group.hedge.budget_percent)
        return entry

    def _reference(self, where: str, deployment: str) -> RoutedDeployment:
        found = self.deployments.get(deployment)
        if found is None:
            raise ConfigError(f"{where}: no deployment named {deployment!r} (deployments: {', '.join(self.deployments)})")
        return found

    def _add(self, entry: RouteGroupEntry, public_names: list[str]) -> None:
        entry.fixed_order = entry.strategy.fixed_order(entry)
        self.groups[entry.name] = entry
        for public in public_names:
            self._by_public_name[public] = entry

    def group_for(self, public_model: str) -> RouteGroupEntry | None:
        return self._by_public_name.get(public_model)

    def public_names(self) -> list[str]:
        return sorted(self._by_public_name)

    def set_base_url(self, provider: str, base_url: str) -> None:
        """Point a managed provider's deployments at the port its backend was started on."""
        for dep in self.deployments.values():
            if dep.provider == provider:
                dep.base_url = base_url.rstrip("/")


def _key_rings(config: Config) -> dict[str, KeyRing]:
    """Each provider's keys, read once per table (a reload reads them again: rotated files, added keys)."""
    rings = {}
    for name, provider in config.providers.items():
        sources = resolve_api_keys(name, provider)
        if sources:
            dialect = DIALECTS[provider.resolved_dialect]
            rings[name] = KeyRing.build(name, sources, dialect, config.breaker.key_open_s)
    return rings


def _routed(name: str, dep: Deployment, provider: Provider, config: Config, catalog: "Catalog | None",
            keys: KeyRing | None) -> RoutedDeployment:
    # identity: tollway relays bytes as they come; compressing and decompressing them would cost CPU twice
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity", **provider.headers}
    dialect = DIALECTS[provider.resolved_dialect]  # config validation made sure it is there
    key = keys.keys[0].secret if keys is not None else None
    if key:
        headers.update(dialect.auth.headers(key))  # the first key: what a caller without a key in hand sends
    if dialect.version_header:
        headers.setdefault(dialect.version_header, provider.api_version or dialect.default_version or "")
    b = config.breaker
    facts = _CatalogFacts(dep, provider, catalog)
    return RoutedDeployment(
        name=name, provider=dep.provider, kind=provider.kind, dialect=dialect,
        jurisdiction=provider.jurisdiction.lower(), upstream_model=dep.model,
        base_url=(provider.base_url or "http://127.0.0.1:0/v1").rstrip("/"), headers=headers,
        context_window=facts.context_window, max_output=dep.max_output, capabilities=facts.capabilities,
        connect_s=provider.timeouts.connect_s, first_byte_s=provider.timeouts.first_byte_s,
        between_chunks_s=provider.timeouts.between_chunks_s, response_s=provider.timeouts.response_s,
        breaker=CircuitBreaker(b.consecutive_failures, b.error_rate, b.window, b.min_requests, b.open_s),
        config=dep, launch=provider.launch, capabilities_known=facts.capabilities_known,
        strong_in=facts.strong_in, self_hosted=provider.is_self_hosted, region=provider.region,
        api_version=provider.api_version, secret=key or "", keys=keys,
    )


class _CatalogFacts:
    """A deployment's context window, capabilities and strengths: what its config says, else the catalog's."""

    def __init__(self, dep: Deployment, provider: Provider, catalog: "Catalog | None") -> None:
        entry = catalog.entry(provider.kind, dep.model) if catalog is not None else None
        if entry is not None and entry.model == "*":  # a self-hosted server's catch-all price, not model facts
            entry = None
        given = dep.model_fields_set
        window = entry.context_window if entry is not None else None
        self.context_window = dep.context_window if "context_window" in given or not window else window
        if "capabilities" in given:
            self.capabilities, self.capabilities_known = frozenset(dep.capabilities), True
        elif entry is not None and entry.capabilities:
            self.capabilities, self.capabilities_known = frozenset(entry.capabilities), True
        else:
            self.capabilities, self.capabilities_known = frozenset(), False
        strong = dep.strong_in if dep.strong_in is not None else (entry.strong_in if entry is not None else [])
        self.strong_in = frozenset(s.lower() for s in strong)

"""The routing table: every public model name resolved, at config load, to its deployments.

Everything a request needs to pick and call a deployment (URL, auth header, limits, breaker) is computed
once here, so the hot path does dictionary lookups only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tollway.config import Config, Deployment, Provider, resolve_api_key
from tollway.routing.breaker import CircuitBreaker


@dataclass(slots=True, eq=False)
class RoutedDeployment:
    """A deployment ready to be called: its provider's facts joined with its own."""

    name: str
    provider: str
    kind: str
    dialect: str
    jurisdiction: str
    upstream_model: str
    base_url: str
    headers: dict[str, str]
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
    same_provider: list["RoutedDeployment"] = field(default_factory=list)
    http_targets: dict = field(default_factory=dict)  # (endpoint, base_url) -> prepared upstream request head  # incl. itself: one account, one balance


    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/{ENDPOINT_PATHS[endpoint]}"

    def target(self, endpoint: str, client) -> object:
        """The upstream client's prepared target for this endpoint, built on first use."""
        key = (endpoint, self.base_url)
        target = self.http_targets.get(key)
        if target is None:
            target = self.http_targets[key] = client.target(self.url(endpoint), self.headers)
        return target


ENDPOINT_PATHS = {"chat": "chat/completions", "completions": "completions", "embeddings": "embeddings"}


@dataclass(slots=True)
class RouteGroupEntry:
    name: str
    deployments: list[RoutedDeployment]
    strategy: str = "priority"
    aliases: list[str] = field(default_factory=list)


class RouteTable:
    """Public model name -> route group; built once per config."""

    def __init__(self, config: Config) -> None:
        self.deployments: dict[str, RoutedDeployment] = {
            name: _routed(name, dep, config.providers[dep.provider], config) for name, dep in config.deployments.items()
        }
        for dep in self.deployments.values():
            dep.same_provider = [d for d in self.deployments.values() if d.provider == dep.provider]
        self.groups: dict[str, RouteGroupEntry] = {}
        self._by_public_name: dict[str, RouteGroupEntry] = {}
        for name, group in config.route_groups.items():
            entry = RouteGroupEntry(name, [self.deployments[d] for d in group.deployments], group.strategy,
                                    list(group.aliases))
            self._add(entry, [name, *group.aliases])
        for name, dep in config.deployments.items():
            if dep.aliases:
                self._add(RouteGroupEntry(name, [self.deployments[name]], "priority", list(dep.aliases)), dep.aliases)

    def _add(self, entry: RouteGroupEntry, public_names: list[str]) -> None:
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


def _routed(name: str, dep: Deployment, provider: Provider, config: Config) -> RoutedDeployment:
    # identity: tollway relays bytes as they come; compressing and decompressing them would cost CPU twice
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity", **provider.headers}
    key = resolve_api_key(dep.provider, provider)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    b = config.breaker
    return RoutedDeployment(
        name=name, provider=dep.provider, kind=provider.kind, dialect=provider.resolved_dialect,
        jurisdiction=provider.jurisdiction, upstream_model=dep.model,
        base_url=(provider.base_url or "http://127.0.0.1:0/v1").rstrip("/"), headers=headers,
        context_window=dep.context_window, max_output=dep.max_output, capabilities=frozenset(dep.capabilities),
        connect_s=provider.timeouts.connect_s, first_byte_s=provider.timeouts.first_byte_s,
        between_chunks_s=provider.timeouts.between_chunks_s, response_s=provider.timeouts.response_s,
        breaker=CircuitBreaker(b.consecutive_failures, b.error_rate, b.window, b.min_requests, b.open_s),
        config=dep, launch=provider.launch,
    )

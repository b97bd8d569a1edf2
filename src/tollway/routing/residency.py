"""Data residency: where a request's data may go, from the key, the route group and the request header.

Each source can only narrow what the others allow (the policy is their intersection), so a client header
can tighten its key's policy but never widen it. The policy removes candidates before any strategy runs
and travels with the plan, so retries, fallbacks, hedges, shadow copies and a model classifier all stay
inside it. When nothing allowed is left, the request fails with a 503 that names the policy: it never
falls back to a deployment outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.accounting.tickets import Key
from tollway.core.errors import GatewayError, bad_request

RESIDENCY_HEADER = "x-tollway-residency"


@dataclass(frozen=True, slots=True)
class ResidencyPolicy:
    allowed: frozenset[str] | None    # None: any jurisdiction
    sources: tuple[str, ...] = ()     # who asked, e.g. ("key k1: eu, self-hosted", "header: eu")

    def permits(self, jurisdiction: str) -> bool:
        return self.allowed is None or jurisdiction.lower() in self.allowed

    def describe(self) -> str:
        if self.allowed is None:
            return "any jurisdiction"
        allowed = ", ".join(sorted(self.allowed)) or "nothing (the sources do not overlap)"
        return f"{allowed} (from {'; '.join(self.sources)})"


UNRESTRICTED = ResidencyPolicy(None)


def residency_policy(key: Key | None, group_name: str, group_residency: list[str] | None,
                     header: str | None) -> ResidencyPolicy:
    """The intersection of the key's, the group's and the header's allowed jurisdictions."""
    if header is None and group_residency is None and (key is None or key.residency is None):
        return UNRESTRICTED  # the common case, decided without building the sources' descriptions
    allowed: frozenset[str] | None = None
    sources: list[str] = []
    for source, values in ((f"key {key.id or '(anonymous)'}" if key else "key", key.residency if key else None),
                           (f"route group {group_name}", group_residency),
                           (RESIDENCY_HEADER, parse_header(header) if header is not None else None)):
        if values is None:
            continue
        normalised = frozenset(v.strip().lower() for v in values)
        allowed = normalised if allowed is None else allowed & normalised
        sources.append(f"{source}: {', '.join(sorted(normalised))}")
    return ResidencyPolicy(allowed, tuple(sources)) if sources else UNRESTRICTED


def parse_header(value: str) -> frozenset[str]:
    """`eu, self-hosted` -> {"eu", "self-hosted"}; an empty list or item is the client's mistake (400)."""
    items = [item.strip().lower() for item in value.split(",")]
    if not value.strip() or any(not item for item in items):
        raise bad_request(f"Header {RESIDENCY_HEADER} must list jurisdictions separated by commas, e.g. "
                          f"'eu,self-hosted' (got {value!r}).", RESIDENCY_HEADER, "invalid_residency")
    return frozenset(items)


def residency_unavailable(model: str, policy: ResidencyPolicy, outside: list[str]) -> GatewayError:
    """Nothing the policy allows can serve this model: a 503 that says which policy and what it excluded."""
    excluded = f" Excluded: {', '.join(outside)}." if outside else ""
    return GatewayError(503, f"No deployment of model '{model}' is allowed by the residency policy: "
                             f"{policy.describe()}.{excluded} The request was not sent anywhere.",
                        "service_unavailable", "residency_unavailable")

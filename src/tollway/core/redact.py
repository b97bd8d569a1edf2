"""Secrets out of what people read: a URL's password is never printed, logged or stored."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else f"{scheme}://{user}@{host}"

"""The API key a request presents, as each dialect sends it, and its public fingerprint.

Per-key behaviour (a revoked key, an account out of funds) is what a gateway with several keys per
provider must survive, so faults can be aimed at one key and the request log says which key came, by
the same fingerprint tollway labels keys with (the first 8 hex digits of the key's SHA-256), never the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

OWN_HEADERS = {"anthropic": "x-api-key", "gemini": "x-goog-api-key", "azure": "api-key"}


def presented_key(headers: Mapping[str, str], dialect: str) -> str | None:
    """The key the request carries: `Authorization: Bearer`, or the dialect's own header."""
    auth = headers.get("Authorization", "")
    given = auth[7:] if auth[:7].lower() == "bearer " else None
    own_header = OWN_HEADERS.get(dialect)
    if own_header is not None:
        given = headers.get(own_header, given if dialect == "anthropic" else None)
    return given


def key_fingerprint(key: str | None) -> str | None:
    return hashlib.sha256(key.encode()).hexdigest()[:8] if key else None

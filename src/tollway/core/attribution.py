"""Who a request is for: OpenAI's `user` field and request tags, checked once at the door for the ledger.

Tags come from the `x-tollway-tags` header (comma-separated `key:value` or bare tags) and from OpenAI's
`metadata` object (each string value becomes `key:value`). They are bounded so a client cannot bloat the
ledger or make a report's groups unbounded: at most MAX_TAGS distinct tags, each at most MAX_TAG_CHARS
characters from TAG_CHARSET. The ledger stores them as a sorted JSON list of strings, so one request with
several tags is counted under each of them when a report groups by tag.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tollway.core.errors import bad_request

MAX_TAGS = 16
MAX_TAG_CHARS = 64
MAX_USER_CHARS = 256
TAG_CHARSET = "letters, digits and _ - . / @ (a ':' separates a tag's key from its value)"
TAGS_HEADER = "x-tollway-tags"
NO_TAGS = "[]"
_TAG = re.compile(r"[A-Za-z0-9_./@-]+(:[A-Za-z0-9_./@:-]*)?\Z")


def attribution(body: dict[str, Any], header: str | None) -> tuple[str, str]:
    """(user, tags as JSON text) of a parsed request; raises GatewayError(400) naming what is wrong."""
    user = body.get("user")
    metadata = body.get("metadata")
    if user is None:
        user = ""
    elif not isinstance(user, str):
        raise bad_request("'user' must be a string.", "user", code="invalid_user")
    elif len(user) > MAX_USER_CHARS:
        raise bad_request(f"'user' must be at most {MAX_USER_CHARS} characters, got {len(user)}.", "user",
                          code="invalid_user")
    if not header and metadata is None:
        return user, NO_TAGS
    tags: set[str] = set()
    if header:
        for part in header.split(","):
            part = part.strip()
            if part:
                tags.add(_checked(part, TAGS_HEADER))
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise bad_request("'metadata' must be an object of string values.", "metadata", code="invalid_tags")
        for key, value in metadata.items():
            if not isinstance(value, str):
                raise bad_request(f"metadata['{_short(key)}'] must be a string.", "metadata", code="invalid_tags")
            tags.add(_checked(f"{key}:{value}", "metadata"))
    if len(tags) > MAX_TAGS:
        raise bad_request(f"At most {MAX_TAGS} tags are allowed (header and metadata together), got {len(tags)}.",
                          TAGS_HEADER if header else "metadata", code="too_many_tags")
    return user, orjson.dumps(sorted(tags)).decode() if tags else NO_TAGS


def _checked(tag: str, where: str) -> str:
    if len(tag) > MAX_TAG_CHARS:
        raise bad_request(f"Tag '{_short(tag)}' in {where} is longer than {MAX_TAG_CHARS} characters.", where,
                          code="invalid_tags")
    if not _TAG.match(tag):
        raise bad_request(f"Tag '{_short(tag)}' in {where} has characters outside {TAG_CHARSET}.", where,
                          code="invalid_tags")
    return tag


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."

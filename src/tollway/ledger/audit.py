"""The admin audit log: who changed what on the admin side, when, and from where.

Every admin action (a key created, changed, revoked, rotated or imported; a team or budget changed; the
config reloaded; a login or logout; a refused admin attempt) is one `AuditEntry`. The log is evidence, so
an entry is written before the admin call is answered (in a thread, off the event loop: admin calls are
not the hot path), and an entry the database refused stays in memory and is written again until it lands
or the process stops, when it is written one last time. It lives in the ledger's database (the SQLite
file or PostgreSQL, audit_store.py), so `tollway audit admin` and the admin UI read what every replica
wrote.

It must never hold a secret: `scrubbed` drops every field whose name says secret (secret, salt, hash,
token, password, api key, client secret ...) and masks any value shaped like a tollway key secret, at any
depth, and the log also masks the secrets it is told about (the admin key, the OIDC client secret).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tollway.ledger.audit_store import AuditQuery, AuditStore

log = logging.getLogger("tollway.audit")

MASK = "***"
_SECRET_NAMES = re.compile(r"secret|salt|hash|token|password|passwd|api[_-]?key|authorization|cookie|"
                           r"code_verifier|private", re.IGNORECASE)
_KEY_SECRET = re.compile(r"tw_[A-Za-z0-9]+_[0-9a-fA-F]{16,}")
_RETRY_S = 5.0


@dataclass(slots=True)
class AuditEntry:
    """One admin action. `actor_kind` is "admin_key" (actor: the key's fingerprint), "oidc" (actor: the
    subject) or "anonymous" (a refused attempt with no valid credential); `outcome` is "ok" or "refused"."""

    action: str
    actor_kind: str
    actor: str
    outcome: str = "ok"
    target: str = ""
    email: str = ""
    role: str = ""
    diff: dict[str, Any] = field(default_factory=dict)
    client: str = ""
    user_agent: str = ""
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scrubbed(value: Any, known: Iterable[str] = ()) -> Any:
    """`value` with secrets removed: fields named like a secret become MASK, strings holding a tollway
    key secret or one of the `known` secrets are masked; dicts and lists are walked at any depth."""
    known = tuple(s for s in known if s)
    if isinstance(value, dict):
        return {k: (MASK if _SECRET_NAMES.search(str(k)) else scrubbed(v, known)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrubbed(v, known) for v in value]
    if isinstance(value, str):
        value = _KEY_SECRET.sub(MASK, value)
        for secret in known:
            value = value.replace(secret, MASK)
        return value
    return value


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """{field: {"from": old, "to": new}} for each field that differs (a created thing: from None)."""
    before, after = before or {}, after or {}
    return {name: {"from": before.get(name), "to": after.get(name)}
            for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)}


class AuditLog:
    """Writes entries to the ledger's database; keeps any it could not write and retries them."""

    def __init__(self, store: AuditStore, secrets: Iterable[str] = ()) -> None:
        self.store = store
        self.secrets = tuple(s for s in secrets if s)
        self._pending: list[AuditEntry] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._retry_forever(), name="audit-retry")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._write_pending()
        if self._pending:
            log.error("audit: %d entries could not be written at shutdown: %s", len(self._pending),
                      [e.as_dict() for e in self._pending])
        await asyncio.to_thread(self.store.close)

    async def record(self, entry: AuditEntry) -> None:
        """Write `entry` (secrets removed) now; if the database refuses, keep it and retry in the background."""
        entry.diff = scrubbed(entry.diff, self.secrets)
        entry.target = scrubbed(entry.target, self.secrets)
        entry.user_agent = scrubbed(entry.user_agent, self.secrets)[:300]
        self._pending.append(entry)
        await self._write_pending()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def read(self, query: AuditQuery) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self.store.read, query)
        shown = {row["id"] for row in rows}
        waiting = [e.as_dict() for e in self._pending if e.id not in shown and query.matches(e.as_dict())]
        return sorted([*rows, *waiting], key=lambda r: r["ts"], reverse=True)[:query.limit]

    async def _write_pending(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        try:
            await asyncio.to_thread(self.store.write, [e.as_dict() for e in batch])
        except Exception as exc:  # the database is away: entries wait in memory, never dropped
            log.error("audit: cannot write %d entries (kept, retried every %.0fs): %s", len(batch), _RETRY_S, exc)
            return
        written = {e.id for e in batch}
        self._pending = [e for e in self._pending if e.id not in written]

    async def _retry_forever(self) -> None:
        while True:
            await asyncio.sleep(_RETRY_S)
            await self._write_pending()

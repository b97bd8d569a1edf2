"""Virtual keys: what one is, how its secret looks, and how the secret is checked without being stored.

A secret looks like `tw_<id>_<48 hex chars>`: the id says which record to check, and the 192 random bits
make guessing hopeless, so a salted SHA-256 is enough (slow password hashes protect guessable secrets).
Only the salt and the hash are stored; the secret is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal

from tollway.accounting.budget_entries import BudgetEntry, plain_limit, to_json, with_plain

SECRET_PREFIX = "tw_"
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l/1/o/0: ids are read aloud and typed
_ID_RE = re.compile(r"^[a-z0-9]{4,32}$")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key as stored (never its secret). Money is Decimal USD; None means no limit."""

    id: str
    name: str
    salt: str
    hash: str
    team: str = ""
    budgets: tuple[BudgetEntry, ...] = ()  # its own, and (per_user) each of its end users'
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ()      # empty: every model
    residency: tuple[str, ...] = ()   # empty: any jurisdiction
    default_max_tokens: int | None = None  # sent (and held) for requests that set no max_tokens
    created_at: str = ""
    updated_at: str = ""
    revoked_at: str = ""
    seq: int = 0                      # the store's change counter when this row last changed
    expires_at: str = ""              # ISO UTC time after which the key is refused (key_expired); "" never
    prev_salt: str = ""               # a rotated-out secret's salt and hash, valid until prev_until (the grace)
    prev_hash: str = ""
    prev_until: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def revoked(self) -> bool:
        return bool(self.revoked_at)

    @property
    def daily_usd(self) -> Decimal | None:
        """The key's own day budget over every model (the field keys had before budgets were a list)."""
        return plain_limit(self.budgets, "day")

    @property
    def monthly_usd(self) -> Decimal | None:
        return plain_limit(self.budgets, "month")

    def public(self) -> dict:
        """The key as the admin API and `tollway keys list --json` show it (no salt, no hash)."""
        return {"id": self.id, "name": self.name, "team": self.team or None,
                "daily_usd": _money(self.daily_usd), "monthly_usd": _money(self.monthly_usd),
                "budgets": to_json(self.budgets),
                "rpm": self.rpm, "tpm": self.tpm, "models": list(self.models), "residency": list(self.residency),
                "default_max_tokens": self.default_max_tokens, "created_at": self.created_at, "updated_at": self.updated_at, "revoked_at": self.revoked_at or None,
                "expires_at": self.expires_at or None, "grace_until": self.prev_until or None}


UNSET: object = object()  # a KeySpec field not being changed


@dataclass(frozen=True, slots=True)
class KeySpec:
    """The settable fields of a key, for create and update: UNSET (limits) and None (the rest) leave a field as it is."""

    name: str | None = None
    team: str | None = None
    daily_usd: Decimal | None | object = UNSET
    monthly_usd: Decimal | None | object = UNSET
    rpm: int | None | object = UNSET
    tpm: int | None | object = UNSET
    default_max_tokens: int | None | object = UNSET
    budgets: tuple[BudgetEntry, ...] | None = None  # the whole list; daily_usd/monthly_usd then edit it
    models: tuple[str, ...] | None = None
    residency: tuple[str, ...] | None = None
    expires_at: str | None = None  # ISO UTC; "" clears it


def new_secret() -> tuple[str, str]:
    """A fresh (key id, secret) pair."""
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
    return key_id, f"{SECRET_PREFIX}{key_id}_{secrets.token_hex(24)}"


def new_record(key_id: str, secret: str, spec: KeySpec) -> KeyRecord:
    """The stored form of a new key: a random salt and the salted hash of its secret."""
    salt = secrets.token_hex(16)
    now = datetime.now(timezone.utc).isoformat()
    record = KeyRecord(id=key_id, name=spec.name or key_id, salt=salt, hash=hash_secret(salt, secret),
                       created_at=now, updated_at=now)
    return apply_spec(record, spec)


def apply_spec(record: KeyRecord, spec: KeySpec) -> KeyRecord:
    """`record` with every field that `spec` sets (UNSET and None leave name/team/models as they were)."""
    changes: dict = {}
    if spec.name is not None:
        changes["name"] = spec.name
    if spec.team is not None:
        changes["team"] = spec.team
    for name in ("rpm", "tpm", "default_max_tokens"):
        value = getattr(spec, name)
        if value is not UNSET:
            changes[name] = value
    budgets = record.budgets if spec.budgets is None else spec.budgets
    for window, value in (("day", spec.daily_usd), ("month", spec.monthly_usd)):
        if value is not UNSET:
            budgets = with_plain(budgets, window, value)  # type: ignore[arg-type]
    if budgets != record.budgets:
        changes["budgets"] = tuple(budgets)
    if spec.models is not None:
        changes["models"] = tuple(spec.models)
    if spec.residency is not None:
        changes["residency"] = tuple(spec.residency)
    if spec.expires_at is not None:
        changes["expires_at"] = spec.expires_at
    return replace(record, **changes)


_IMPORTED_RE = re.compile(r"^tw_([a-z0-9]{4,32})_([0-9a-f]{32,128})$")


def imported_key_id(secret: str) -> str:
    """The key id of a secret brought from elsewhere; raises ValueError naming the shape it must have.
    Only tollway's own shape is taken (`tw_<id>_<32-128 lowercase hex>`): the id inside it is how a
    presented secret finds its record, and 32 hex digits (128 bits) keep it unguessable."""
    match = _IMPORTED_RE.match(secret)
    if match is None:
        raise ValueError("an imported secret must look like tw_<id>_<hex>: id 4-32 lowercase letters or digits, "
                         "then 32-128 lowercase hex digits")
    return match.group(1)


def rotated(record: KeyRecord, secret: str, grace_until: str) -> KeyRecord:
    """`record` with a new secret; the current one stays valid until `grace_until` (ISO UTC)."""
    salt = secrets.token_hex(16)
    return replace(record, salt=salt, hash=hash_secret(salt, secret), prev_salt=record.salt, prev_hash=record.hash,
                   prev_until=grace_until)


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id inside a tollway secret, or None when `token` is not shaped like one."""
    if not token.startswith(SECRET_PREFIX):
        return None
    key_id, sep, rest = token[len(SECRET_PREFIX):].partition("_")
    if not sep or not rest or not _ID_RE.match(key_id):
        return None
    return key_id


def verify(record: KeyRecord, token: str) -> bool:
    """Constant-time check of a presented secret against the stored salted hash."""
    return hmac.compare_digest(hash_secret(record.salt, token), record.hash)


def verify_previous(record: KeyRecord, token: str) -> bool:
    """Whether `token` is the key's rotated-out secret (whatever its grace: the caller checks the time)."""
    return bool(record.prev_hash) and hmac.compare_digest(hash_secret(record.prev_salt, token), record.prev_hash)


def past(moment: str, now: datetime | None = None) -> bool:
    """Whether the ISO time `moment` (set: not "") has come."""
    return datetime.fromisoformat(moment) <= (now or datetime.now(timezone.utc))


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)

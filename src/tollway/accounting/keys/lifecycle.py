"""A key's life after creation: expiry and rotation with a grace period, checked when a secret is presented.

A verified secret is normally remembered so the next request skips hashing; a secret whose validity
depends on the clock (a key with an expiry, or a rotated-out secret in its grace) is checked every time
instead, so it stops working the moment it should.
"""

from __future__ import annotations

from tollway.accounting import refusals
from tollway.accounting.keys.records import KeyRecord, past, verify, verify_previous
from tollway.core.errors import unauthorized


def admitted(record: KeyRecord | None, token: str) -> bool:
    """Raise GatewayError(401) unless `token` opens `record` now: `invalid_api_key`, `key_revoked`,
    `key_expired` or `key_rotated`. Returns whether the secret may be remembered (its validity does not
    depend on the clock)."""
    if record is None:
        raise unauthorized()
    current = verify(record, token)
    if not current and not verify_previous(record, token):
        raise unauthorized()
    if record.revoked:
        raise refusals.key_revoked()
    if record.expires_at and past(record.expires_at):
        raise refusals.key_expired()
    if not current and past(record.prev_until):
        raise refusals.key_rotated()
    return current and not record.expires_at

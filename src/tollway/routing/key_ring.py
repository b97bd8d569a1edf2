"""A provider's API keys, used in turn, each with its own breaker.

Several keys spread one provider's traffic over several accounts (or several keys of one account) and
let a key be rotated without a restart. A key can fail on its own while the provider is healthy: it was
revoked (401/403) or its account ran out of money (DeepSeek's 402, OpenAI's `insufficient_quota` 429,
each dialect's meaning from providers/). Such a refusal opens that key's breaker for `breaker.key_open_s`
(longer than a transient error holds a deployment off: a balance does not refill, nor a revoked key come
back, in seconds), so the key is skipped and the next one serves; once the cool-down has passed, one
request probes the key again. Transient errors (5xx, timeouts, rate limits) say nothing about a key: they
count against the deployment's breaker as always, and rotation sends the retry to the next key anyway.

The ring belongs to the provider, so every deployment of the provider shares its keys, turn and
breakers. Choosing a key is O(1) while keys are healthy: the next one in turn, skipping open ones.

A key is named by a fingerprint (the first 8 hex digits of the SHA-256 of the secret): it does not give
the secret back, it is the same on every replica and across reloads and reorderings, and an operator
can compute it from the key they hold (`printf %s "$KEY" | sha256sum | cut -c1-8`). The secret itself
never leaves `headers` and `secret`, which no repr, log, row or metric shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tollway.providers.failure import Failure, FailureKind
from tollway.routing.breaker import CircuitBreaker

if TYPE_CHECKING:
    from tollway.providers.dialect import Dialect

KEY_REFUSALS = frozenset({FailureKind.UPSTREAM_AUTH, FailureKind.OUT_OF_FUNDS})  # the key's fault, not the deployment's


def fingerprint(secret: str) -> str:
    """A key's public name: 8 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


@dataclass(slots=True, eq=False)
class ProviderKey:
    """One key of a provider: its auth headers, breaker and what it last said."""

    label: str                                      # the fingerprint
    source: str                                     # the env var or file it came from (not secret)
    secret: str = field(repr=False)
    headers: dict[str, str] = field(repr=False)     # the dialect's auth header(s) carrying it
    breaker: CircuitBreaker
    ledger_label: str = ""                          # the label, when the provider has several keys (rows name it)
    refusal: str = ""                               # why it was last held off, e.g. "upstream_auth 401"
    sent: int = 0                                   # attempts sent with it by this process


class KeyRing:
    """A provider's keys in configured order; `pick()` takes the next usable one."""

    __slots__ = ("provider", "keys", "open_s", "_next")

    def __init__(self, provider: str, keys: list[ProviderKey], open_s: float) -> None:
        self.provider = provider
        self.keys = keys
        self.open_s = open_s
        self._next = 0

    @classmethod
    def build(cls, provider: str, sources: list[tuple[str, str]], dialect: Dialect, open_s: float) -> KeyRing:
        """The ring for `(source, secret)` pairs; `open_s` is how long a refused key is left out."""
        several = len(sources) > 1
        keys = []
        for source, secret in sources:
            label = fingerprint(secret)
            keys.append(ProviderKey(label, source, secret, dialect.auth.headers(secret), _key_breaker(open_s),
                                    label if several else ""))
        return cls(provider, keys, open_s)

    def pick(self) -> ProviderKey | None:
        """The next key in turn whose breaker lets a request through (taking a half-open key's probe);
        None when every key is held off."""
        keys = self.keys
        index = self._next
        key = keys[index]
        if key.breaker.allow():  # the usual case, without the loop
            self._next = index + 1 if index + 1 < len(keys) else 0
            key.sent += 1
            return key
        return self._pick_after(index)

    def _pick_after(self, start: int) -> ProviderKey | None:
        keys = self.keys
        count = len(keys)
        for step in range(1, count):
            index = start + step
            if index >= count:
                index -= count
            key = keys[index]
            if key.breaker.allow():
                self._next = index + 1 if index + 1 < count else 0
                key.sent += 1
                return key
        return None

    def usable(self) -> bool:
        """Whether some key would be picked now (nothing is taken)."""
        for key in self.keys:
            if key.breaker.available():
                return True
        return False

    def answered(self, key: ProviderKey) -> None:
        """The provider served a request on `key`: a probing key is back in turn."""
        breaker = key.breaker
        if not breaker.closed:  # only a probe's answer changes anything
            breaker.record(True)

    def failed(self, key: ProviderKey, failure: Failure) -> bool:
        """What a failed attempt on `key` says about the key: a refusal of the key itself holds it off for
        `open_s` (True); anything else leaves it in turn and frees a probe it held (False)."""
        if failure.kind in KEY_REFUSALS:
            key.refusal = f"{failure.kind.value} {failure.status}" if failure.status else failure.kind.value
            key.breaker.force_open()
            return True
        key.breaker.abandon()
        return False

    def released(self, key: ProviderKey) -> None:
        """The attempt ended without an answer about the key (cancelled): free a probe it held."""
        key.breaker.abandon()

    def held_off(self) -> str:
        """Why no key is usable, for a skipped attempt's reason: each key's label and last refusal."""
        parts = [f"{key.label} {key.refusal or 'probing'}" for key in self.keys if not key.breaker.available()]
        return f"every API key of provider {self.provider} is held off ({', '.join(parts)})"

    def exhausted(self) -> Failure:
        """The failure of an attempt that found no usable key when it started (another request took the
        last probe in between)."""
        return Failure(FailureKind.UPSTREAM_AUTH, self.held_off())

    def secrets(self) -> list[str]:
        return [key.secret for key in self.keys]

    def take_state(self, old: KeyRing) -> None:
        """After a reload: each key that was already in `old` (the same secret) keeps its breaker and
        count, so a refused key stays held off and a new key starts in turn. Only when the cool-down is
        unchanged: a breaker keeps the one it was made with."""
        if old.open_s != self.open_s:
            return
        before = {key.secret: key for key in old.keys}
        for key in self.keys:
            kept = before.get(key.secret)
            if kept is not None:
                key.breaker, key.refusal, key.sent = kept.breaker, kept.refusal, kept.sent


def _key_breaker(open_s: float) -> CircuitBreaker:
    """A breaker opened only by `force_open` (a refusal of the key); its window never fills with failures,
    because only answers are recorded on it."""
    return CircuitBreaker(1, 1.0, 2, 1, open_s)


def key_states(rings: dict[str, KeyRing]) -> list[list]:
    """[provider, label, state, opened, sent] for every key: for metrics and another worker's scrape."""
    return [[ring.provider, key.label, key.breaker.state, key.breaker.opened_count, key.sent]
            for ring in rings.values() for key in ring.keys]


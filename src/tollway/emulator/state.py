"""Everything the emulator remembers at run time: live profiles, counters, load, the request log.

Tests read it back through the control API (stats, requests) and routers read the load through the
Prometheus endpoints, so the counts here are the real ones: a request is in flight from arrival until
its last byte (or its client's disconnect), and waits for a run slot when `max_running` is set.
"""

from __future__ import annotations

import asyncio
import collections
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from tollway.emulator.api_keys import key_fingerprint, presented_key
from tollway.emulator.faults import model_rng, pick_fault
from tollway.emulator.profiles import EmulatorConfig, Fault, ModelProfile, merge_profile

REQUEST_LOG_SIZE = 1000
RATE_WINDOW_S = 60.0
LOGGED_HEADERS = ("content-type", "user-agent", "accept", "anthropic-version", "anthropic-beta", "x-request-id",
                  "idempotency-key", "openai-organization", "openai-project")


@dataclass
class ModelStats:
    requests: int = 0
    sequence: int = 0  # fault counter; restarts when the profile is replaced
    in_flight: int = 0
    by_status: collections.Counter = field(default_factory=collections.Counter)
    recent: collections.deque = field(default_factory=collections.deque)  # arrival times, for rate headers


@dataclass
class Load:
    """One (dialect, model) backend as a self-hosted server's /metrics sees it."""

    running: int = 0
    waiting: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    finished: collections.Counter = field(default_factory=collections.Counter)  # finish_reason -> count


class RunSlots:
    """A model's batch capacity: at most `limit` requests generate at once, the rest queue (0 = unlimited)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit) if limit else None

    @asynccontextmanager
    async def hold(self, load: Load) -> AsyncIterator[None]:
        if self._semaphore is None:
            load.running += 1
            try:
                yield
            finally:
                load.running -= 1
            return
        load.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            load.waiting -= 1
        load.running += 1
        try:
            yield
        finally:
            load.running -= 1
            self._semaphore.release()


@dataclass(frozen=True)
class Admission:
    """One admitted request: its model's profile at arrival and its 1-based sequence number."""

    model: str
    dialect: str
    profile: ModelProfile
    sequence: int
    fault: Fault | None
    key: str | None = None  # the API key the request presented


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.startup = config
        self.seed = config.seed
        self.default = config.default
        self.profiles: dict[str, ModelProfile] = dict(config.models)
        self.started = time.time()
        self._clear_counters()

    def _clear_counters(self) -> None:
        self.stats: dict[str, ModelStats] = {}
        self.loads: dict[tuple[str, str], Load] = {}
        self.log: collections.deque = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._rngs: dict[str, Any] = {}
        self._slots: dict[str, RunSlots] = getattr(self, "_slots", {})

    def reset(self, profiles: bool = False) -> None:
        """Forget counters, the request log and RNG draws; with `profiles`, also restore the startup profiles.

        Requests still running keep their in-flight and load counts, so those drop back to zero as they end.
        """
        if profiles:
            self.default = self.startup.default
            self.profiles = dict(self.startup.models)
        in_flight = {name: s.in_flight for name, s in self.stats.items() if s.in_flight}
        busy = {key: load for key, load in self.loads.items() if load.running or load.waiting}
        self._clear_counters()
        for name, count in in_flight.items():
            self.stats[name] = ModelStats(in_flight=count)
        for key, load in busy.items():
            load.prompt_tokens = load.generation_tokens = 0
            load.finished.clear()
            self.loads[key] = load

    def profile(self, model: str) -> ModelProfile:
        return self.profiles.get(model, self.default)

    def set_profile(self, model: str, overrides: dict[str, Any]) -> ModelProfile:
        """Replace one model's profile (merged over the default); its fault counter and RNG restart."""
        profile = merge_profile(self.default, overrides, f"profile for model {model!r}")
        self.profiles[model] = profile
        self._stats(model).sequence = 0
        self._rngs.pop(model, None)
        self._slots.pop(model, None)
        return profile

    def known_models(self) -> list[str]:
        return sorted(set(self.profiles) | set(self.stats))

    def _stats(self, model: str) -> ModelStats:
        return self.stats.setdefault(model, ModelStats())

    def load(self, dialect: str, model: str) -> Load:
        return self.loads.setdefault((dialect, model), Load())

    def slots(self, model: str, limit: int) -> RunSlots:
        slots = self._slots.get(model)
        if slots is None or slots.limit != limit:
            slots = self._slots[model] = RunSlots(limit)
        return slots

    def admit(self, model: str, dialect: str, path: str, body: Any, headers: Any) -> Admission:
        """Count the request, log it, and decide its fault."""
        stats = self._stats(model)
        stats.requests += 1
        stats.sequence += 1
        stats.in_flight += 1
        now = time.monotonic()
        stats.recent.append(now)
        while stats.recent and stats.recent[0] < now - RATE_WINDOW_S:
            stats.recent.popleft()
        key = presented_key(headers, dialect)
        self.log.append(_log_entry(model, dialect, path, body, headers, key))
        profile = self.profile(model)
        rng = self._rngs.get(model) or self._rngs.setdefault(model, model_rng(self.seed, model))
        return Admission(model, dialect, profile, stats.sequence, pick_fault(profile.faults, stats.sequence, rng, key),
                         key)

    def finish(self, model: str, status: int | None) -> None:
        """The request is over; `status` None means it never got an answer (hung until the client left)."""
        stats = self._stats(model)
        stats.in_flight = max(0, stats.in_flight - 1)
        if status is not None:
            stats.by_status[str(status)] += 1

    def recent_requests(self, model: str) -> int:
        return len(self._stats(model).recent)

    def stats_json(self) -> dict[str, Any]:
        return {name: {"requests": s.requests, "by_status": dict(s.by_status), "in_flight": s.in_flight}
                for name, s in sorted(self.stats.items())}

    def requests_json(self, model: str | None, limit: int | None) -> list[dict[str, Any]]:
        entries = [entry for entry in self.log if model is None or entry["model"] == model]
        return entries[-limit:] if limit else entries


def _log_entry(model: str, dialect: str, path: str, body: Any, headers: Any, key: str | None) -> dict[str, Any]:
    """What a test may check about a received request. The Authorization value is never kept: only the
    presented key's fingerprint."""
    selected = {name: headers[name] for name in LOGGED_HEADERS if name in headers}
    selected.update({name.lower(): value for name, value in headers.items() if name.lower().startswith("x-tollway-")})
    auth = headers.get("authorization", "")
    scheme = "bearer" if auth.lower().startswith("bearer ") else ("other" if auth else None)
    if "x-api-key" in headers:
        scheme = "x-api-key"
    return {"time": time.time(), "model": model, "dialect": dialect, "path": path, "auth": scheme,
            "key_fingerprint": key_fingerprint(key), "headers": selected, "body": body}

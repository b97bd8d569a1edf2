"""A circuit breaker per deployment: stop sending to a deployment that keeps failing, probe it later.

Without it, every request during an outage pays a connect timeout before failing over. The breaker opens
on N consecutive failures or on an error rate over a sliding window, refuses for `open_s`, then lets one
request through (half-open); that probe's outcome closes or reopens it. State is per process: each replica
learns on its own, which is what a local network view calls for. A provider key has one too
(routing/key_ring.py), opened only by what the provider says about the key itself.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    __slots__ = ("_threshold", "_error_rate", "_min_requests", "_open_s", "_outcomes", "_failures_in_window",
                 "_consecutive", "_state", "_opened_at", "_probe_in_flight", "_clock", "opened_count")

    def __init__(self, consecutive_failures: int, error_rate: float, window: int, min_requests: int,
                 open_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = consecutive_failures
        self._error_rate = error_rate
        self._min_requests = min_requests
        self._open_s = open_s
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._failures_in_window = 0
        self._consecutive = 0
        self._state = CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._clock = clock
        self.opened_count = 0

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self._open_s:
            return HALF_OPEN
        return self._state

    @property
    def closed(self) -> bool:
        """Closed for certain (the usual case), read without the open-to-half-open clock check."""
        return self._state == CLOSED

    def allow(self) -> bool:
        """Whether a request may go to this deployment now; in half-open, only one probe at a time."""
        if self._state == CLOSED:  # the usual case: no clock read
            return True
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._probe_in_flight:
            self._state = HALF_OPEN
            self._probe_in_flight = True
            return True
        return False

    def available(self) -> bool:
        """Whether `allow()` would say yes now, without taking the half-open probe."""
        if self._state == CLOSED:
            return True
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._probe_in_flight)

    def record(self, success: bool) -> None:
        if self._state == HALF_OPEN:
            self._probe_in_flight = False
            if success:
                self._close()
            else:
                self._open()
            return
        outcomes = self._outcomes  # the sliding window, kept inline: this runs once per attempt
        if len(outcomes) == outcomes.maxlen and not outcomes[0]:
            self._failures_in_window -= 1
        outcomes.append(success)
        if success:
            self._consecutive = 0
            return
        self._failures_in_window += 1
        self._consecutive += 1
        if self._consecutive >= self._threshold or self._rate_exceeded():
            self._open()

    def abandon(self) -> None:
        """A half-open probe ended without an outcome (the client went away): let another probe through."""
        self._probe_in_flight = False

    def force_open(self, seconds: float | None = None) -> None:
        """Open now, e.g. when the provider says its balance is empty; optionally for longer than usual."""
        self._open()
        if seconds is not None:
            self._opened_at = self._clock() - self._open_s + seconds

    def _rate_exceeded(self) -> bool:
        seen = len(self._outcomes)
        return seen >= self._min_requests and self._failures_in_window / seen >= self._error_rate

    def _open(self) -> None:
        if self._state != OPEN:
            self.opened_count += 1
        self._state = OPEN
        self._opened_at = self._clock()
        self._probe_in_flight = False

    def _close(self) -> None:
        self._state = CLOSED
        self._consecutive = 0
        self._outcomes.clear()
        self._failures_in_window = 0

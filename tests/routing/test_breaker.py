"""The circuit breaker opens on consecutive failures or error rate, probes once when half-open, and closes."""

from tollway.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **overrides) -> CircuitBreaker:
    settings = dict(consecutive_failures=3, error_rate=0.5, window=10, min_requests=6, open_s=5.0)
    settings.update(overrides)
    return CircuitBreaker(**settings, clock=clock)


def test_opens_after_consecutive_failures_then_half_open_probe_closes_it():
    clock = Clock()
    breaker = make(clock)
    for _ in range(2):
        breaker.record(False)
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record(False)
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 5.0
    assert breaker.state == HALF_OPEN
    assert breaker.allow()          # the probe
    assert not breaker.allow()      # only one probe at a time
    breaker.record(True)
    assert breaker.state == CLOSED and breaker.allow()


def test_failed_probe_reopens_for_another_period():
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.record(False)
    clock.now += 5.0
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == OPEN
    clock.now += 4.9
    assert not breaker.allow()
    assert breaker.opened_count == 2


def test_error_rate_opens_without_consecutive_run():
    clock = Clock()
    breaker = make(clock, consecutive_failures=100)
    for outcome in (True, False, True, False, True, False):
        breaker.record(outcome)
    assert breaker.state == OPEN  # 3 of 6 failed = 50%


def test_error_rate_needs_min_requests_and_forgets_old_outcomes():
    clock = Clock()
    breaker = make(clock, consecutive_failures=100, window=4, min_requests=4)
    for outcome in (False, True, False):
        breaker.record(outcome)
    assert breaker.state == CLOSED  # only 3 seen
    for outcome in (True, True, True):
        breaker.record(outcome)
    assert breaker.state == CLOSED  # window now T,T,T,T... after old failures fell out
    breaker.record(False)
    assert breaker.state == CLOSED  # 1 of 4


def test_abandoned_probe_lets_another_through_and_force_open_lasts():
    clock = Clock()
    breaker = make(clock)
    breaker.force_open(60.0)
    clock.now += 10
    assert not breaker.allow()
    clock.now += 50
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()

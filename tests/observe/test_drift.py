"""A lasting change pages once, after it is established, with its full size; bursts and noise do not page."""

import random
from decimal import Decimal

from tests.observe.support import row
from tollway.observe.drift import DriftWatch
from tollway.observe.settings import DriftSettings

DRIFT = DriftSettings(recent_requests=5, reference_requests=20, min_reference=10)
M = Decimal("0.000001")  # prices below are USD per million tokens


def answer(cost: Decimal | str, completion: int = 100, prompt: int = 100):
    return row("x", "2026-11-23T10:00:00+00:00", cost=str(cost), completion=completion, prompt=prompt)


def feed(watch: DriftWatch, rows, alert: bool = True) -> list:
    alerts = []
    for r in rows:
        alerts += watch.observe(r, alert=alert)
    return alerts


def test_completion_tokens_50_to_500_page_once_with_the_full_ratio_after_the_change_is_established():
    watch = DriftWatch(DRIFT)
    assert feed(watch, [answer("0.001", completion=50)] * 30) == []
    assert feed(watch, [answer("0.001", completion=500)] * 5) == [], "a window that straddles the change: not yet"
    alerts = feed(watch, [answer("0.001", completion=500)] * 45)
    assert [a.kind for a in alerts] == ["output_drift"], [a.title for a in alerts]
    (alert,) = alerts
    assert alert.title == "ds-flash: output length up 10.00x (deepseek/deepseek-flash)"
    assert (alert.value, alert.expected) == ("500", "50"), "the new level against the old one, not a mixed window"
    assert "Since the change, 5 answers of ds-flash in a row averaged 500 completion tokens; the 20 answers " \
           "before it averaged 50 completion tokens." in alert.detail


def test_a_swap_to_a_model_with_ten_times_the_output_price_pages_the_full_cost_change_once():
    watch = DriftWatch(DRIFT)
    before = 100 * 1 * M + 100 * 2 * M    # 100 prompt tokens at $1/M, 100 completion tokens at $2/M
    after = 100 * 1 * M + 100 * 20 * M    # the new model: $20/M output
    assert feed(watch, [answer(before)] * 40) == []
    alerts = feed(watch, [answer(after)] * 60)
    assert [(a.kind, a.value, a.expected) for a in alerts] == [("cost_drift", "0.0021", "0.0003")]
    assert alerts[0].title == "ds-flash: cost per request up 7.00x (deepseek/deepseek-flash)"


def test_a_change_back_pages_once_too():
    watch = DriftWatch(DRIFT)
    feed(watch, [answer("0.001", completion=50)] * 30)
    assert len(feed(watch, [answer("0.001", completion=500)] * 40)) == 1
    alerts = feed(watch, [answer("0.001", completion=50)] * 40)
    assert [(a.kind, a.value, a.expected) for a in alerts] == [("output_drift", "50", "500")]
    assert "output length down 0.10x" in alerts[0].title


def test_noise_within_the_factor_and_a_short_burst_do_not_page():
    rng = random.Random(12)
    watch = DriftWatch(DRIFT)
    noisy = [answer(Decimal(rng.randint(700, 1300)) * M, completion=rng.randint(70, 130)) for _ in range(500)]
    assert feed(watch, noisy) == []
    burst = [answer("0.01", completion=1000)] * 3  # three long, dear answers in a row, then back to usual
    assert feed(watch, burst + [answer("0.001", completion=100)] * 40) == []


def test_a_change_the_ledger_already_holds_is_the_reference_at_start():
    watch = DriftWatch(DRIFT)
    history = [answer("0.001", completion=50)] * 30 + [answer("0.001", completion=500)] * 40
    assert feed(watch, history, alert=False) == []
    assert feed(watch, [answer("0.001", completion=500)] * 40) == [], "paged before the restart, not again"

"""Spend findings merged by the traffic that tripped them: one incident, one page (controlled clock, no processes).

Three keys share route group chat on deployment ds-flash; each usually spends 0.01 USD a minute, so the
deployment and the route group usually spend 0.03.
"""

import logging
from datetime import UTC, datetime

from tests.observe.support import row
from tollway.observe.anomalies import SpendWatch
from tollway.observe.settings import AlertSettings

WEEK = 7 * 24 * 3600
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC).timestamp()  # a Monday, 10:30 UTC
KEYS = ("k-a", "k-b", "k-c")


def spend(cost: str, key: str, group: str = "chat", deployment: str = "ds-flash", provider: str = "deepseek"):
    return row("x", "2026-11-23T10:30:00+00:00", group=group, deployment=deployment, provider=provider, cost=cost,
               key_id=key)


def shared_route_watch(**alerts) -> SpendWatch:
    config = {"window_s": 60, "thresholds": [], "cooldown_s": 600,
              "baseline": {"factor": 3, "min_cost_usd": "0.01", "min_tokens": 10 ** 9,
                           "scopes": ["key", "route_group", "deployment"]}, **alerts}
    watch = SpendWatch(AlertSettings.model_validate(config))
    for week in (1, 2):
        for key in KEYS:
            watch.learn(spend("0.60", key), NOW - week * WEEK)  # 0.60 an hour: 0.01 a minute
    return watch


def ordinary(watch: SpendWatch, now: float, keys=KEYS) -> None:
    for key in keys:
        watch.observe(spend("0.01", key), now)


def pages(alerts) -> list[tuple[str, str, str]]:
    return [(a.scope, a.subject, a.title) for a in alerts]


def test_ordinary_traffic_and_noise_within_the_factor_do_not_page():
    watch = shared_route_watch()
    ordinary(watch, NOW)
    assert watch.evaluate(NOW) == []
    for key in KEYS:  # every key at 2.5x its usual: below the 3x factor in every series
        watch.observe(spend("0.015", key), NOW + 1)
    assert watch.evaluate(NOW + 1) == []


def test_one_keys_spike_on_a_shared_route_is_one_page_naming_every_tripped_series():
    watch = shared_route_watch()
    ordinary(watch, NOW)
    watch.observe(spend("0.50", "k-a"), NOW + 1)  # the key: 0.51; deployment and group: 0.53
    (alert,) = watch.evaluate(NOW + 1)
    assert (alert.kind, alert.scope, alert.subject) == ("spend_anomaly", "key", "k-a")
    assert alert.title == "Spend spike on key k-a: 0.51 USD in the last 60s (also deployment ds-flash, route_group chat)"
    assert "The same traffic took deployment ds-flash to 0.53 USD (usual 0.03)." in alert.detail
    assert "route_group chat to 0.53 USD (usual 0.03)" in alert.detail
    watch.observe(spend("0.50", "k-a"), NOW + 2)
    assert watch.evaluate(NOW + 2) == [], "the spike goes on: still the same page"


def test_two_keys_spiking_on_different_routes_are_two_pages():
    watch = shared_route_watch()
    ordinary(watch, NOW)
    watch.observe(spend("0.50", "k-a"), NOW + 1)
    watch.observe(spend("0.40", "k-b", group="code", deployment="kimi-big", provider="kimi"), NOW + 1)
    alerts = watch.evaluate(NOW + 1)
    assert sorted((scope, subject) for scope, subject, _ in pages(alerts)) == [("key", "k-a"), ("key", "k-b")]
    titles = {a.subject: a.title for a in alerts}
    assert titles["k-a"].endswith("(also deployment ds-flash, route_group chat)")
    assert titles["k-b"].endswith("(also deployment kimi-big, route_group code)")


def test_two_keys_spiking_on_the_same_route_are_two_pages_and_the_route_is_named_once():
    watch = shared_route_watch()
    ordinary(watch, NOW)
    watch.observe(spend("0.50", "k-a"), NOW + 1)
    watch.observe(spend("0.30", "k-b"), NOW + 1)
    alerts = watch.evaluate(NOW + 1)
    assert [(scope, subject) for scope, subject, _ in pages(alerts)] == [("key", "k-a"), ("key", "k-b")]
    assert alerts[0].title.endswith("(also deployment ds-flash, route_group chat)"), "k-a brought most of it"
    assert "also" not in alerts[1].title


def test_a_route_tripped_by_other_traffic_is_its_own_page():
    watch = shared_route_watch()
    ordinary(watch, NOW)
    watch.observe(spend("0.05", "k-a"), NOW + 1)  # k-a: 0.06, 6x its usual
    watch.observe(spend("1.00", ""), NOW + 1)    # traffic without a key: the route reaches 1.08
    alerts = watch.evaluate(NOW + 1)
    assert [(scope, subject) for scope, subject, _ in pages(alerts)] == [("key", "k-a"), ("deployment", "ds-flash")]
    assert "also" not in alerts[0].title, "k-a's 0.05 is not what took the route to 1.09"
    assert alerts[1].title.endswith("(also route_group chat)")


def test_a_series_tripping_later_on_the_same_traffic_does_not_page_again(caplog):
    watch = shared_route_watch()
    ordinary(watch, NOW)
    watch.observe(spend("0.04", "k-a"), NOW + 1)  # k-a 0.05 (5x); the deployment 0.07, below 3x 0.03
    (alert,) = watch.evaluate(NOW + 1)
    assert (alert.scope, alert.subject, "also" in alert.title) == ("key", "k-a", False)
    watch.observe(spend("0.20", "k-a"), NOW + 2)  # now the deployment and group trip too, on k-a's requests
    with caplog.at_level(logging.INFO, logger="tollway.alerts"):
        assert watch.evaluate(NOW + 2) == []
    assert "deployment ds-flash tripped on the traffic of the open alert on key k-a" in caplog.text
    watch.observe(spend("0.50", "k-b"), NOW + 3)
    (other,) = watch.evaluate(NOW + 3)
    assert (other.scope, other.subject) == ("key", "k-b"), "another key's spike is another incident"


def test_each_fixed_rule_finding_is_its_own_page_even_with_equal_sums():
    watch = SpendWatch(AlertSettings.model_validate({
        "window_s": 60, "baseline": {"enabled": False},
        "thresholds": [{"metric": "cost_usd", "above": "5", "window_s": 60, "scope": "key"}]}))
    watch.observe(spend("6", "k-a"), NOW)
    watch.observe(spend("6", "k-b"), NOW)
    alerts = watch.evaluate(NOW)
    assert sorted((a.kind, a.subject) for a in alerts) == [("threshold", "k-a"), ("threshold", "k-b")]
    assert all("also" not in a.title for a in alerts)

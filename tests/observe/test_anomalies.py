"""Weekly baselines and fixed thresholds on synthetic traffic, with a controlled clock (no processes)."""

from datetime import UTC, datetime
from decimal import Decimal

from tests.observe.support import row
from tollway.observe.anomalies import SpendWatch
from tollway.observe.baselines import HourlyHistory, hour_of
from tollway.observe.settings import AlertSettings

WEEK = 7 * 24 * 3600
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC).timestamp()  # a Monday, 10:30 UTC


def settings(**alerts) -> AlertSettings:
    base = {"window_s": 60, "thresholds": [], "cooldown_s": 600,
            "baseline": {"factor": 3, "min_cost_usd": "0.01", "min_tokens": 100, "scopes": ["route_group"]}}
    return AlertSettings.model_validate({**base, **alerts})


def spend(cost: str, tokens: int = 0, group: str = "chat", key: str = ""):
    return row("x", "2026-11-23T10:30:00+00:00", group=group, cost=cost, prompt=tokens, key_id=key)


def test_baseline_is_the_same_hour_on_the_same_weekday():
    history = HourlyHistory(weeks=4)
    series = ("route_group", "chat")
    monday_10 = hour_of(NOW)
    history.add(series, monday_10 - 168, Decimal("3.0"), 100)        # last Monday 10:00
    history.add(series, monday_10 - 2 * 168, Decimal("1.0"), 100)    # the Monday before
    history.add(series, monday_10 - 24, Decimal(50), 100)          # Sunday 10:00: another weekday
    baseline = history.baseline(series, "cost_usd", monday_10, min_history_hours=24)
    assert baseline.per_hour == Decimal("2.0")
    assert baseline.basis == "this hour on this weekday over 2 week(s)"


def test_without_a_week_of_history_the_same_hour_of_the_last_days_counts():
    history = HourlyHistory(weeks=4)
    series = ("route_group", "chat")
    hour = hour_of(NOW)
    for day in (1, 2, 3):
        history.add(series, hour - 24 * day, Decimal(day), 0)
    history.add(series, hour - 5, Decimal(100), 0)  # another hour of the day: not this hour's baseline
    baseline = history.baseline(series, "cost_usd", hour, min_history_hours=24)
    assert baseline.per_hour == Decimal(2) and baseline.basis == "this hour over 3 day(s)"
    assert history.baseline(series, "cost_usd", hour, min_history_hours=100) is None, "too little history"


def test_quiet_hours_count_as_zero():
    history = HourlyHistory(weeks=4)
    hour = hour_of(NOW)
    history.add(("route_group", "other"), hour - 2 * 168, Decimal(1), 0)  # traffic began two weeks ago
    history.add(("route_group", "chat"), hour - 168, Decimal(4), 0)      # chat: only last week
    assert history.baseline(("route_group", "chat"), "cost_usd", hour, 24).per_hour == Decimal(2)


def _watch_with_history(config: AlertSettings, per_hour_cost: str = "0.60") -> SpendWatch:
    watch = SpendWatch(config)
    for week in (1, 2):
        watch.learn(spend(per_hour_cost, tokens=6000), NOW - week * WEEK)
    return watch  # usual: 0.01 USD and 100 tokens per 60 s window


def test_spike_fires_once_then_rearms_after_it_clears_and_the_cooldown():
    watch = _watch_with_history(settings(cooldown_s=120))
    watch.observe(spend("0.02", tokens=150), NOW)
    assert watch.evaluate(NOW) == [], "2x the usual is below the 3x factor"
    watch.observe(spend("0.05", tokens=150), NOW + 1)
    alerts = watch.evaluate(NOW + 1)
    assert [(a.kind, a.scope, a.subject) for a in alerts] == [("spend_anomaly", "route_group", "chat")]
    assert "Spend spike on route_group chat: 0.07 USD in the last 60s" in alerts[0].title
    assert alerts[0].expected == "0.01"
    watch.observe(spend("0.05"), NOW + 2)
    assert watch.evaluate(NOW + 2) == [] and watch.evaluate(NOW + 30) == [], "the same spike pages once"
    assert watch.evaluate(NOW + 100) == [], "the window has cleared"
    watch.observe(spend("0.2"), NOW + 110)
    assert watch.evaluate(NOW + 110) == [], "inside the cooldown"
    watch.observe(spend("0.01"), NOW + 300)  # a small amount so the series is still tracked
    assert watch.evaluate(NOW + 300) == []
    watch.observe(spend("0.2"), NOW + 301)
    assert len(watch.evaluate(NOW + 301)) == 1, "after the cooldown a new spike pages again"


def test_a_small_absolute_change_does_not_page():
    watch = _watch_with_history(settings(), per_hour_cost="0.006")  # usual 0.0001 per window
    watch.observe(spend("0.005"), NOW)  # 50x, but only half a cent
    assert watch.evaluate(NOW) == []


def test_token_spike_alone_is_a_warning():
    watch = _watch_with_history(settings())
    watch.observe(spend("0", tokens=5000), NOW)
    (alert,) = watch.evaluate(NOW)
    assert alert.severity == "warning" and alert.title.startswith("Token use spike on route_group chat")


def test_the_same_traffic_in_several_scopes_is_one_alert_naming_them():
    config = settings(baseline={"factor": 3, "min_cost_usd": "0.01", "min_tokens": 100,
                                "scopes": ["key", "route_group", "deployment"]})
    watch = SpendWatch(config)
    for week in (1, 2):
        watch.learn(spend("0.60", tokens=6000, key="team-a"), NOW - week * WEEK)
    watch.observe(spend("1.00", key="team-a"), NOW)
    (alert,) = watch.evaluate(NOW)
    assert (alert.scope, alert.subject) == ("key", "team-a"), "the most specific series leads"
    assert "(also deployment ds-flash, route_group chat)" in alert.title


def test_fixed_threshold_of_tokens_in_five_minutes():
    config = settings(baseline={"enabled": False},
                      thresholds=[{"metric": "tokens", "above": 10_000_000, "window_s": 300}])
    watch = SpendWatch(config)
    watch.observe(spend("0", tokens=6_000_000), NOW)
    assert watch.evaluate(NOW) == []
    watch.observe(spend("0", tokens=4_000_001), NOW + 200)
    (alert,) = watch.evaluate(NOW + 200)
    assert alert.kind == "threshold" and alert.scope == "total"
    assert alert.title == "tokens > 10000000 in 300s per total: all traffic reached 10000001 tokens"
    assert watch.evaluate(NOW + 250) == []
    assert watch.evaluate(NOW + 400) == [], "the first burst left the window"


def test_no_baseline_no_relative_alert_but_thresholds_still_work():
    config = settings(thresholds=[{"metric": "cost_usd", "above": "5", "window_s": 60, "scope": "key"}],
                      baseline={"scopes": ["key"]})
    watch = SpendWatch(config)  # no history at all
    watch.observe(spend("6", key="k1"), NOW)
    (alert,) = watch.evaluate(NOW)
    assert (alert.kind, alert.scope, alert.subject) == ("threshold", "key", "k1")

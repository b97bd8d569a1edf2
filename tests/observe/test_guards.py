"""Drift guards, the repoint guard's price classes and state file, and how budgets are read."""

from dataclasses import dataclass
from decimal import Decimal

from tests.observe.support import row
from tollway.observe.budget_view import parse_budgets
from tollway.observe.drift import DriftWatch
from tollway.observe.route_snapshot import (
    Target,
    load_targets,
    price_class_changed,
    repoint_alerts,
    save_targets,
)
from tollway.observe.settings import AlertSettings, DriftSettings

DRIFT = DriftSettings(recent_requests=5, reference_requests=20, min_reference=10, fingerprint_samples=3)


def answer(cost: str, completion: int = 100):
    return row("x", "2026-11-23T10:00:00+00:00", cost=cost, completion=completion, prompt=10)


def feed(watch: DriftWatch, rows, fingerprint: str = "") -> list:
    alerts = []
    for r in rows:
        alerts += watch.observe(r, fingerprint)
    return alerts


def test_cost_per_request_shift_alerts_once_and_becomes_the_new_normal():
    watch = DriftWatch(DRIFT)
    assert feed(watch, [answer("0.001")] * 15) == []
    alerts = feed(watch, [answer("0.004")] * 10)
    assert [a.kind for a in alerts] == ["cost_drift"]
    assert alerts[0].subject == "ds-flash" and "cost per request up" in alerts[0].title
    assert feed(watch, [answer("0.004")] * 30) == [], "the new level is the reference now"


def test_small_cost_wobble_and_too_little_reference_stay_quiet():
    watch = DriftWatch(DRIFT)
    assert feed(watch, [answer("0.001"), answer("0.0015")] * 20) == []
    fresh = DriftWatch(DRIFT)
    assert feed(fresh, [answer("0.001")] * 6 + [answer("0.01")] * 5) == [], "reference below min_reference"


def test_output_length_drop_alerts():
    watch = DriftWatch(DRIFT)
    feed(watch, [answer("0.001", completion=400)] * 15)
    alerts = feed(watch, [answer("0.001", completion=100)] * 15)
    assert [a.kind for a in alerts] == ["output_drift"] and "output length down 0.25x" in alerts[0].title
    assert (alerts[0].value, alerts[0].expected) == ("100", "400")


def test_failed_and_unpriced_answers_are_ignored():
    watch = DriftWatch(DRIFT)
    feed(watch, [answer("0.001")] * 15)
    failures = [row("f", "2026-11-23T10:00:00+00:00", status="error", cost="0.5")] * 10
    unpriced = [row("u", "2026-11-23T10:00:00+00:00", cost="0", priced=0)] * 10
    assert feed(watch, failures + unpriced) == []


def test_fingerprint_change_needs_a_streak():
    watch = DriftWatch(DRIFT)
    assert feed(watch, [answer("0.001")] * 3, "fp_a") == []
    assert feed(watch, [answer("0.001")] * 2, "fp_b") + feed(watch, [answer("0.001")], "fp_a") == [], "a blip"
    alerts = feed(watch, [answer("0.001")] * 3, "fp_b")
    assert [(a.kind, a.expected, a.value) for a in alerts] == [("fingerprint_change", "fp_a", "fp_b")]
    assert feed(watch, [answer("0.001")] * 5, "fp_b") == []


def test_history_builds_references_without_alerting():
    watch = DriftWatch(DRIFT)
    for r in [answer("0.001")] * 15 + [answer("0.01")] * 5:
        assert watch.observe(r, alert=False) == []


CHEAP = Target("ds-flash", "deepseek", "deepseek-flash", "0.175")
DEAR = Target("kimi-big", "kimi", "kimi-k2.5", "1.075")
SIMILAR = Target("ds-pro", "deepseek", "deepseek-v4-pro", "0.3")


def test_price_classes():
    factor = Decimal(2)
    assert price_class_changed(CHEAP, DEAR, factor) and price_class_changed(DEAR, CHEAP, factor)
    assert not price_class_changed(CHEAP, SIMILAR, factor), "1.7x is the same class at factor 2"
    unknown = Target("x", "x", "x", None)
    free = Target("local", "local", "smollm2", "0")
    assert price_class_changed(CHEAP, unknown, factor) and price_class_changed(free, CHEAP, factor)
    assert not price_class_changed(unknown, Target("y", "y", "y", None), factor)


def test_repoint_alerts_group_names_that_moved_together(tmp_path):
    path = tmp_path / "ledger.db.routes.json"
    save_targets(path, {"chat": CHEAP, "gpt-4o-mini": CHEAP, "code": CHEAP, "fast": CHEAP})
    previous = load_targets(path)
    assert previous == {"chat": CHEAP, "gpt-4o-mini": CHEAP, "code": CHEAP, "fast": CHEAP}
    alerts = repoint_alerts(previous, {"chat": DEAR, "gpt-4o-mini": DEAR, "code": SIMILAR, "fast": CHEAP},
                            Decimal(2))
    assert len(alerts) == 1
    assert alerts[0].subject == "chat, gpt-4o-mini" and "upgrade: 6.14x the price" in alerts[0].title
    assert load_targets(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert load_targets(tmp_path / "bad.json") is None


@dataclass
class Status:
    scope: str
    id: str
    window: str
    spent_usd: str
    limit_usd: str


def test_budget_status_shapes():
    as_dicts = parse_budgets([{"scope": "key", "id": "k1", "name": "team-a key", "window": "daily",
                               "spent_usd": "2.5", "limit_usd": "10"}])
    assert [(b.name, b.spent_usd, b.limit_usd, b.ratio) for b in as_dicts] == \
        [("key:team-a key (daily)", Decimal("2.5"), Decimal(10), Decimal("0.25"))]
    as_objects = parse_budgets([Status("team", "ml", "monthly", "1", "4")])
    assert as_objects[0].name == "team:ml (monthly)" and as_objects[0].ratio == Decimal("0.25")
    as_mapping = parse_budgets({"k2": {"spent_usd": "3"}})
    assert as_mapping[0].name == "k2" and as_mapping[0].limit_usd is None and as_mapping[0].ratio is None
    assert parse_budgets([{"nothing": "useful"}]) == [] and parse_budgets(None) == []


def test_drift_switched_off_keeps_nothing_and_never_alerts():
    """`alerts.drift.enabled: false`, or alerts off altogether, silences the drift guards."""
    shift = [answer("0.001")] * 15 + [answer("0.004")] * 10
    on = DriftWatch.for_alerts(AlertSettings.model_validate({"drift": DRIFT.model_dump()}))
    assert [a.kind for a in feed(on, shift)] == ["cost_drift"]
    for alerts in ({"drift": {**DRIFT.model_dump(), "enabled": False}},
                   {"enabled": False, "drift": DRIFT.model_dump()}):
        watch = DriftWatch.for_alerts(AlertSettings.model_validate(alerts))
        assert feed(watch, shift) == [] and watch._deployments == {}, alerts

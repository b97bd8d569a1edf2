"""The ledger's past read back at start: hourly sums for baselines (exact), the dashboard window, drift."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.observe.support import row, write_ledger
from tollway.observe.baselines import hour_of
from tollway.observe.history import load_history
from tollway.observe.settings import ObserveSettings

UNTIL = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_baseline_sums_window_rows_and_drift_references(tmp_path):
    last_week = UNTIL - timedelta(weeks=1)
    rows = [row(f"w{i}", (last_week + timedelta(seconds=i)).isoformat(), cost="0.1", prompt=10, completion=5,
                key_id="k1") for i in range(3)]
    rows.append(row("shadow", last_week.isoformat(), cost="7", shadow=1))
    rows += [row(f"r{i}", (UNTIL - timedelta(minutes=30, seconds=i)).isoformat(), cost="0.000001", prompt=1,
                 completion=1, latency=100) for i in range(25)]
    rows.append(row("future", UNTIL.isoformat(), cost="100"))  # not before `until`: not history
    path = tmp_path / "ledger.db"
    write_ledger(path, rows)
    settings = ObserveSettings.model_validate({"alerts": {"drift": {"recent_requests": 5, "min_reference": 10}}})
    loaded = load_history(path, settings, UNTIL)
    baseline = loaded.hourly.baseline(("key", "k1"), "cost_usd", hour_of(UNTIL.timestamp()), 24)
    assert baseline.per_hour == Decimal("0.3"), "exact decimal sum of last week's hour, shadow copies left out"
    assert loaded.hourly.baseline(("route_group", "chat"), "tokens", hour_of(UNTIL.timestamp()), 24).per_hour == 45
    snapshot = loaded.live.snapshot(UNTIL.timestamp())
    assert loaded.window_rows == 25 and snapshot["totals"]["requests"] == 25
    assert snapshot["totals"]["cost_usd"] == "0.000025"
    alerts = []
    for _ in range(15):
        alerts += loaded.drift.observe(row("new", UNTIL.isoformat(), cost="0.00001", prompt=1, completion=1))
    assert [(a.kind, a.value, a.expected) for a in alerts] == [("cost_drift", "0.00001", "0.000001")], \
        "references came from the ledger"


def test_missing_ledger_is_an_empty_past(tmp_path):
    loaded = load_history(tmp_path / "none.db", ObserveSettings(), UNTIL)
    assert loaded.window_rows == 0 and loaded.hourly.first_hour is None

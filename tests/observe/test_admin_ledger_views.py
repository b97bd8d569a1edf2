"""The admin UI's ledger views on a known SQLite ledger: spend per key, team, user and tag equals the exact
sums of the rows, the request log filters by status, key, model and time, and bad query values get a 400
naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.observe.support import row, write_ledger
from tollway.core.errors import GatewayError
from tollway.ledger.reader import SqliteLedgerReader
from tollway.observe.admin_ui import ledger_views

NOW = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)


@pytest.fixture
def reader(tmp_path):
    at = lambda minutes: (NOW - timedelta(minutes=minutes)).isoformat()  # noqa: E731
    rows = [
        row("r1", at(10), cost="0.001", key_id="k1", end_user="u1", tags='["env:prod", "app:search"]'),
        row("r2", at(70), cost="0.0003", key_id="k1", end_user="u2", tags='["env:prod"]'),
        row("r3", at(20), cost="0.02", key_id="k2", end_user="u1", tags="[]", requested_model="gpt-4o-mini"),
        row("r4", at(30), cost="0", key_id="k2", status="error", deployment="", provider="", model=""),
        row("r5", at(60 * 30), cost="7", key_id="k1"),  # a day and more ago
    ]
    write_ledger(tmp_path / "ledger.db", rows)
    return SqliteLedgerReader(tmp_path / "ledger.db")


def _series(data: dict) -> dict[str, Decimal]:
    return {s["name"]: Decimal(s["total_usd"]) for s in data["series"]}


def test_spend_per_dimension_is_the_exact_sum(reader):
    since, until = NOW - timedelta(hours=6), NOW
    teams = {"k1": "search", "k2": "ads"}
    by_key = ledger_views.spend(reader, "key", "hour", since, until, teams)
    assert _series(by_key) == {"k1": Decimal("0.0013"), "k2": Decimal("0.02")}
    assert Decimal(by_key["total_usd"]) == Decimal("0.0213")
    assert [p["t"] for s in by_key["series"] if s["name"] == "k1" for p in s["points"]] == ["2026-12-06T11",
                                                                                          "2026-12-06T12"]
    assert _series(ledger_views.spend(reader, "team", "day", since, until, teams)) == {
        "ads": Decimal("0.02"), "search": Decimal("0.0013")}
    assert _series(ledger_views.spend(reader, "user", "day", since, until, teams)) == {
        "u1": Decimal("0.021"), "u2": Decimal("0.0003"), "(none)": Decimal(0)}
    by_tag = ledger_views.spend(reader, "tag", "day", since, until, teams)
    assert _series(by_tag) == {"env:prod": Decimal("0.0013"), "app:search": Decimal("0.001"),
                               "(none)": Decimal("0.02")}
    assert Decimal(by_tag["total_usd"]) == Decimal("0.0213"), "a request with two tags counts once in the total"
    whole = ledger_views.spend(reader, "key", "day", NOW - timedelta(days=3), NOW, teams)
    assert _series(whole)["k1"] == Decimal("7.0013")


def test_the_request_log_filters_and_keeps_the_newest(reader):
    window = {"since": (NOW - timedelta(hours=6)).isoformat(), "until": NOW.isoformat()}
    log = lambda **q: [r["id"] for r in ledger_views.request_log(reader, ledger_views.log_filter({**window, **q}))]  # noqa: E731
    assert log() == ["r1", "r3", "r4", "r2"]
    assert log(key="k1") == ["r1", "r2"]
    assert log(status="error") == ["r4"] and log(status="502") == ["r4"]
    assert log(model="gpt-4o-mini") == ["r3"] and log(model="deepseek-flash") == ["r1", "r3", "r2"]
    assert log(limit="2") == ["r1", "r3"]
    entry = ledger_views.request_log(reader, ledger_views.log_filter({**window, "key": "k1"}))[0]
    assert entry["cost_usd"] == "0.001" and entry["tags"] == ["env:prod", "app:search"] and entry["user"] == "u1"
    assert entry["attempts"][0]["deployment"] == "ds-flash"


@pytest.mark.parametrize(("query", "param"), [
    ({"since": "yesterday"}, "since"), ({"until": "2026-13-01"}, "until"),
    ({"since": "2026-12-06T10:00", "until": "2026-12-06T09:00"}, "since"),
    ({"since": "2026-01-01", "until": "2026-12-01"}, "since"), ({"limit": "many"}, "limit"), ({"limit": "0"}, "limit"),
])
def test_bad_query_values_get_a_400_naming_them(query, param):
    with pytest.raises(GatewayError) as caught:
        ledger_views.log_filter(query)
    assert caught.value.status == 400 and caught.value.param == param


def test_spend_refuses_an_unknown_dimension_or_bucket(reader):
    for by, bucket, param in (("model", "day", "by"), ("key", "week", "bucket")):
        with pytest.raises(GatewayError) as caught:
            ledger_views.spend(reader, by, bucket, NOW - timedelta(hours=1), NOW, {})
        assert caught.value.status == 400 and caught.value.param == param

"""The workload derived from a real SQLite ledger matches what was written into it."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.plan.support import MONDAY, busy_weekdays, request, write_ledger
from tollway.plan.ledger_source import open_ledger, redact
from tollway.plan.ledger_workload import workload_from_ledger
from tollway.plan.scenario import ScenarioError


def test_volumes_mix_and_shape_come_from_answered_non_shadow_rows(tmp_path):
    rows = busy_weekdays(days=28)
    extra = len(rows)
    # noise that must not count: failures, shadow copies
    rows += [request(extra + 1, MONDAY + timedelta(hours=3), prompt=10**6, status="error"),
             request(extra + 2, MONDAY + timedelta(hours=3), prompt=10**6, shadow=1)]
    path = write_ledger(tmp_path / "ledger.db", rows)
    w = workload_from_ledger(open_ledger(str(path)))
    assert w.daily_input_tokens == Decimal(44_000)
    assert w.daily_cached_tokens == Decimal(17_600)
    assert w.daily_cache_write_tokens == Decimal(2_200)
    assert w.daily_output_tokens == Decimal(8_800)
    assert w.mean_prompt_tokens == 1000
    # busiest hour carries 3 of the day's 44 requests: 3 / (44 / 24)
    assert w.peak_to_average == Decimal(3) * 24 / 44
    assert len(w.hour_weights) == 168
    # mean tokens in each hour of the week: 3 requests of 1200 tokens in busy hours, 1 otherwise
    assert w.hour_weights[8] == w.hour_weights[24 * 6 + 17] == Decimal(3600)
    assert w.hour_weights[0] == w.hour_weights[24 * 6 + 23] == Decimal(1200)
    assert w.hour_shares[8] == Decimal(3) / (44 * 7)
    assert w.growth_per_month == 0
    (only,) = w.model_mix
    assert (only.provider, only.model, only.daily_requests) == ("deepseek", "deepseek-flash", Decimal(44))
    assert "28 day(s)" in w.notes[0]


def test_sqlite_url_and_a_window(tmp_path):
    path = write_ledger(tmp_path / "ledger.db", busy_weekdays(days=14))
    since = MONDAY + timedelta(days=7)
    w = workload_from_ledger(open_ledger(f"sqlite:///{path}"), since=since, until=since + timedelta(days=2))
    assert w.daily_input_tokens == Decimal(44_000)
    assert "2 day(s)" in w.notes[0]
    assert "hour of day" in " ".join(w.notes)  # under a week: a 24-hour shape repeated


def test_growth_is_fitted_from_daily_volume(tmp_path):
    rows = [request(day, MONDAY + timedelta(days=day, hours=12), prompt=round(1_000_000 * 1.01 ** day), cached=0,
                    cache_write=0, completion=0) for day in range(30)]
    path = write_ledger(tmp_path / "ledger.db", rows)
    w = workload_from_ledger(open_ledger(str(path)))
    expected = Decimal(1.01 ** (365 / 12) - 1)
    assert abs(w.growth_per_month - expected) < Decimal("0.00001")
    assert "log-linear fit over 28 whole days" in " ".join(w.notes)


def test_too_few_days_for_growth_say_so(tmp_path):
    path = write_ledger(tmp_path / "ledger.db", busy_weekdays(days=5))
    w = workload_from_ledger(open_ledger(str(path)))
    assert w.growth_per_month == 0
    assert "growth: not estimated" in " ".join(w.notes)


def test_per_model_mix(tmp_path):
    rows = busy_weekdays(days=7)
    n = len(rows)
    rows += [request(n + i, MONDAY + timedelta(days=i, hours=2), prompt=5000, cached=0, cache_write=0,
                     completion=1000, provider="qwen", model="qwen3.5-plus") for i in range(7)]
    w = workload_from_ledger(open_ledger(str(write_ledger(tmp_path / "l.db", rows))))
    by_model = {m.model: m for m in w.model_mix}
    assert by_model["qwen3.5-plus"].daily_input_tokens == Decimal(5000)
    assert by_model["qwen3.5-plus"].daily_output_tokens == Decimal(1000)
    assert by_model["deepseek-flash"].daily_input_tokens == Decimal(44_000)
    assert w.daily_input_tokens == Decimal(49_000)


def test_clear_errors_for_bad_ledgers(tmp_path):
    with pytest.raises(ScenarioError, match="no ledger file at"):
        workload_from_ledger(open_ledger(str(tmp_path / "absent.db")))
    assert not (tmp_path / "absent.db").exists()

    import sqlite3

    other = tmp_path / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE t (x INTEGER);")
    with pytest.raises(ScenarioError, match="no 'requests' table"):
        workload_from_ledger(open_ledger(str(other)))

    partial = tmp_path / "partial.db"
    sqlite3.connect(partial).executescript("CREATE TABLE requests (id TEXT, ts TEXT, status TEXT);")
    with pytest.raises(ScenarioError, match="lacks columns: provider, upstream_model"):
        workload_from_ledger(open_ledger(str(partial)))

    empty = write_ledger(tmp_path / "empty.db", [])
    with pytest.raises(ScenarioError, match="no answered"):
        workload_from_ledger(open_ledger(str(empty)))

    with pytest.raises(ScenarioError, match="unsupported ledger URL scheme"):
        open_ledger("mysql://u:pw@host/db")


def test_postgres_urls_are_accepted_and_never_print_the_password():
    reader = open_ledger("postgresql://tollway:s3cret-pw@127.0.0.1:1/ledger")
    assert "s3cret-pw" not in reader.description
    try:
        import psycopg  # noqa: F401
    except ImportError:
        with pytest.raises(ScenarioError) as caught:
            reader.hourly_buckets(None, None)
        assert "psycopg" in str(caught.value) and "s3cret-pw" not in str(caught.value)
    else:  # psycopg present: nothing listens on port 1, so the connection fails, still without the password
        with pytest.raises(ScenarioError) as caught:
            reader.hourly_buckets(None, None)
        assert "s3cret-pw" not in str(caught.value)
    assert redact("postgresql://u:pw@db:5432/x") == "postgresql://u:***@db:5432/x"

"""Budget entries as people write them (CLI text, admin API JSON): accepted forms, and errors that name
the entry, the field and what would be accepted."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tollway.accounting.budget_entries import (
    BudgetEntry,
    BudgetEntryError,
    entries_from_json,
    entries_from_text,
    with_plain,
)


def test_text_and_json_give_the_same_entries() -> None:
    typed = entries_from_text(["day=5", "Weekly=20@chat", "user:day=$0.50", "month=100"], models={"chat"})
    sent = entries_from_json([{"window": "day", "limit_usd": "5"},
                              {"window": "week", "limit_usd": 20, "model": "chat"},
                              {"window": "day", "limit_usd": "0.50", "per_user": True},
                              {"window": "monthly", "limit_usd": "100"}], models={"chat"})
    assert typed == sent == (BudgetEntry("day", Decimal(5)), BudgetEntry("week", Decimal(20), "chat"),
                             BudgetEntry("day", Decimal("0.50"), per_user=True), BudgetEntry("month", Decimal(100)))
    assert [e.text() for e in typed] == ["day=5", "week=20@chat", "user:day=0.50", "month=100"]
    assert entries_from_text(["none"]) == () and entries_from_json(None) == ()


@pytest.mark.parametrize("entries, message", [
    ([{"window": "fortnight", "limit_usd": "5"}],
     "budgets[0].window: unknown window 'fortnight'; use hour, day, week or month"),
    ([{"window": "day", "limit_usd": "0"}], "budgets[0].limit_usd: a budget must be more than $0, got '0'"),
    ([{"window": "day", "limit_usd": "-1"}], "budgets[0].limit_usd: a budget must be more than $0"),
    ([{"window": "day", "limit_usd": "lots"}], "budgets[0].limit_usd: expected a USD amount"),
    ([{"window": "day", "limit_usd": "1e7"}], "is more than a budget can count exactly ($9,007,199)"),
    ([{"window": "day", "limit_usd": "1", "model": "gpt-9"}],
     "budgets[0].model: no model 'gpt-9' in the config (models: chat, cheap)"),
    ([{"window": "day"}], "budgets[0]: needs both window and limit_usd"),
    ([{"window": "day", "limit_usd": "1", "scope": "x"}], "budgets[0].scope: unknown field"),
    ([{"window": "day", "limit_usd": "1", "per_user": "yes"}], "budgets[0].per_user: expected true or false"),
    ([{"window": "day", "limit_usd": "1"}, {"window": "day", "limit_usd": "2"}],
     "budgets[1]: a second day budget; give each window one limit"),
    ("day=5", "budgets: expected a list"),
])
def test_bad_json_entries_name_the_problem(entries: object, message: str) -> None:
    with pytest.raises(BudgetEntryError) as caught:
        entries_from_json(entries, "budgets", models={"chat", "cheap"})
    assert message in str(caught.value)


@pytest.mark.parametrize("texts, message", [
    (["day"], "budget 'day': expected [user:]WINDOW=USD[@MODEL]"),
    (["year=5"], "budget 'year=5': unknown window 'year'"),
    (["day=0"], "budget 'day=0': a budget must be more than $0"),
    (["day=1@nope"], "budget[0].model: no model 'nope' in the config"),
])
def test_bad_text_entries_name_the_problem(texts: list[str], message: str) -> None:
    with pytest.raises(BudgetEntryError) as caught:
        entries_from_text(texts, models={"chat"})
    assert message in str(caught.value)


def test_daily_usd_and_monthly_usd_edit_the_plain_day_and_month_entries() -> None:
    entries = (BudgetEntry("day", Decimal(1), "chat"), BudgetEntry("day", Decimal(2), per_user=True))
    entries = with_plain(with_plain(entries, "day", Decimal(5)), "month", Decimal(100))
    assert [e.text() for e in entries] == ["day=5", "month=100", "day=1@chat", "user:day=2"]
    assert [e.text() for e in with_plain(entries, "day", None)] == ["month=100", "day=1@chat", "user:day=2"]

"""The admin UI's teams in a real headless Chromium, signed in with the admin key: create a team with
budgets, see a bad budget refused by name, edit it, see its keys counted, delete it; every write audited.
Needs the admin API's team routes (GET/POST/PATCH/DELETE /admin/teams); a gateway without them shows the
teams its keys name, and this test says so and stops."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.accounting.support import ADMIN_KEY, Admin, budget_config, start_gateway
from tests.observe.support import audit_rows

pytestmark = pytest.mark.slow


def _wait(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.1)
    return value


def _text(driver, selector: str) -> str:
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                                 selector)


def _open_teams(driver) -> None:
    driver.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="teams"]').click()
    _wait(lambda: driver.execute_script("return document.body.dataset.loaded") == "teams", "the teams tab's data")


def _fill_team(driver, **fields: str) -> None:
    form = driver.find_element(By.ID, "team-form")
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    driver.find_element(By.ID, "team-submit").click()


def test_teams_created_edited_and_deleted_in_the_ui(emulator, browser, tmp_path):
    with ExitStack() as stack:
        gw = start_gateway(stack, tmp_path, budget_config(emulator))
        me = httpx.get(f"{gw.url}/admin/ui/api/me", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
        if not me["features"]["teams"]:
            pytest.skip("this gateway's admin API has no /admin/teams routes; the UI shows the keys' team names")
        driver = browser
        driver.get(f"{gw.url}/admin/ui")
        driver.find_element(By.NAME, "key").send_keys(ADMIN_KEY)
        driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
        _wait(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "the admin UI")
        _open_teams(driver)

        _fill_team(driver, name="search", budgets="day=100, week=20@chat", rpm="60")
        _wait(lambda: _text(driver, 'tr[data-team="search"] td.source') == "store", "the new team")
        budgets = _text(driver, 'tr[data-team="search"] td.budgets')
        assert budgets.startswith("day=100") and "@chat" in budgets

        _fill_team(driver, name="bad", budgets="fortnight=5")
        _wait(lambda: "400" in _text(driver, "#message") and "fortnight" in _text(driver, "#message"),
              "the bad window refused by name")
        assert not driver.find_elements(By.CSS_SELECTOR, 'tr[data-team="bad"]'), "nothing half-applied"

        driver.find_element(By.CSS_SELECTOR, 'tr[data-team="search"] button.edit-team').click()
        _fill_team(driver, budgets="day=50")
        _wait(lambda: _text(driver, 'tr[data-team="search"] td.budgets').startswith("day=50"), "the edited budgets")
        assert "@chat" not in _text(driver, 'tr[data-team="search"] td.budgets'), "the list is replaced"

        Admin(gw).create_key(name="in-search", team="search")
        _open_teams(driver)
        assert _text(driver, 'tr[data-team="search"] td.keys') == "1"

        driver.find_element(By.CSS_SELECTOR, 'tr[data-team="search"] button.delete-team').click()
        driver.switch_to.alert.accept()
        _wait(lambda: _text(driver, 'tr[data-team="search"] td.source') == "keys", "the deleted team (its key stays)")

        writes = [(r["action"], r["target"], r["outcome"]) for r in audit_rows(gw.ledger)]
        assert ("admin.write", "POST /admin/teams", "ok") in writes
        assert ("admin.write", "PATCH /admin/teams/search", "ok") in writes
        assert ("admin.write", "DELETE /admin/teams/search", "ok") in writes

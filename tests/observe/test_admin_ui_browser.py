"""The admin UI in a real headless Chromium, signed in through a real OpenID provider (npm's oidc-provider):
an admin creates a key (named like an XSS attack) and sees its secret once, uses it, finds its requests
in the filtered log with their attempts and exact cost, sees its spend, rotates and revokes it, and reads
the audit log; a viewer sees no write control, and its forged writes get 403."""

from __future__ import annotations

import time
from contextlib import ExitStack
from decimal import Decimal

import openai
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.accounting.support import budget_config, start_gateway
from tests.fixtures.oidc import CLIENT_SECRET
from tests.gateway.support import chat
from tests.observe.support import audit_rows

pytestmark = pytest.mark.slow
HOSTILE_NAME = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"


def _wait(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.1)


def _js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def _text(driver, selector: str) -> str:
    return _js(driver, "const e = document.querySelector(arguments[0]); return e === null ? '' : e.textContent;",
               selector)


def _sign_in(driver, gw, account: str) -> None:
    driver.delete_all_cookies()  # the provider's session too (same host): sign in afresh
    driver.get(f"{gw.url}/admin/ui")
    driver.find_element(By.ID, "sso").click()
    _wait(lambda: driver.find_elements(By.ID, "login"), f"the provider's login form (at {driver.current_url})")
    driver.find_element(By.ID, "login").send_keys(account)
    driver.find_element(By.ID, "login-submit").click()
    _wait(lambda: _js(driver, "return document.body.dataset.ready === '1'"), f"the admin UI for {account}")


def _open_tab(driver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#tabs button[data-tab="{name}"]').click()
    _wait(lambda: _js(driver, "return document.body.dataset.loaded") == name, f"the {name} tab's data")


def _fetch(driver, method: str, path: str, body: dict | None, csrf: bool) -> dict:
    """A write made from the signed-in page itself (what a forged request from the UI's origin can do)."""
    return driver.execute_async_script("""
        const [method, path, body, csrf, done] = arguments;
        const me = await (await fetch('/admin/ui/api/me')).json();
        const headers = {'Content-Type': 'application/json'};
        if (csrf) headers['X-CSRF-Token'] = me.csrf;
        const reply = await fetch(path, {method, headers, body: body === null ? undefined : JSON.stringify(body)});
        done({status: reply.status, body: await reply.json()});
    """, method, path, body, csrf)


@pytest.fixture
def admin_ui(emulator, oidc_provider, tmp_path):
    provider = oidc_provider()
    config = budget_config(emulator, admin=provider.gateway_section())
    with ExitStack() as stack:
        gw = start_gateway(stack, tmp_path, config, env={"TOLLWAY_OIDC_SECRET": CLIENT_SECRET})
        provider.start(f"{gw.url}/admin/ui/callback")
        yield gw


def test_admin_flows_with_single_sign_on(admin_ui, browser, tmp_path):
    gw, driver = admin_ui, browser
    _sign_in(driver, gw, "alice")
    assert _text(driver, "#me-role") == "admin" and _text(driver, "#me-name") == "alice@example.com"
    session = next(c for c in driver.get_cookies() if c["name"] == "tollway_admin_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax" and not session["secure"]  # http on loopback

    # Create a key with a hostile name: its secret is shown once, its name as text.
    form = driver.find_element(By.ID, "key-form")
    form.find_element(By.NAME, "name").send_keys(HOSTILE_NAME)
    form.find_element(By.NAME, "team").send_keys("search")
    form.find_element(By.NAME, "daily_usd").send_keys("100")
    driver.find_element(By.ID, "key-submit").click()
    secret = _wait(lambda: _text(driver, "#new-secret-value"), "the new key's secret")
    key_id = secret.split("_")[1]
    assert secret.startswith(f"tw_{key_id}_")
    _wait(lambda: _text(driver, f'tr[data-key-id="{key_id}"] td.name') == HOSTILE_NAME, "the key's name as text")
    assert _js(driver, "return window.pwned") is None, "the key's name ran as code"
    assert _js(driver, "return document.querySelectorAll('script').length") == 1
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text
    driver.find_element(By.ID, "new-secret-done").click()
    assert _text(driver, "#new-secret-value") == ""
    driver.refresh()
    _wait(lambda: _text(driver, f'tr[data-key-id="{key_id}"] td.state') == "active", "the key after a reload")
    assert secret not in driver.page_source, "the secret is shown once"
    _open_tab(driver, "teams")
    assert _text(driver, 'tr[data-team="search"] td.keys') == "1"

    # The key serves requests; the log filtered by key shows them, each with its attempts and exact cost.
    client = gw.client(api_key=secret)
    ids = [client.chat.completions.with_raw_response.create(**chat(user="u-42")).headers["x-request-id"]
           for _ in range(2)]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(**chat(model="no-such-model"))
    costs = {i: Decimal(gw.row(i)["cost_usd"]) for i in ids}
    _open_tab(driver, "requests")
    filters = driver.find_element(By.ID, "requests-form")
    filters.find_element(By.NAME, "key").send_keys(key_id)
    filters.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(lambda: _js(driver, "return document.querySelectorAll('tr.request').length") == 3, "the key's 3 requests")
    filters.find_element(By.CSS_SELECTOR, "select[name=status] option[value=ok]").click()
    filters.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(lambda: _js(driver, "return [...document.querySelectorAll('tr.request')].map(r => r.dataset.status)")
          == ["ok", "ok"], "only the ok requests")
    shown = _js(driver, "return [...document.querySelectorAll('tr.request')].map(r => "
                        "[r.dataset.requestId, r.querySelector('td.cost').dataset.exact])")
    assert {rid: Decimal(cost) for rid, cost in shown} == costs
    driver.find_element(By.CSS_SELECTOR, f'tr.request[data-request-id="{ids[0]}"]').click()
    detail = f'tr.detail[data-detail-for="{ids[0]}"]'
    _wait(lambda: _js(driver, "return !document.querySelector(arguments[0]).hidden", detail), "the attempts")
    attempts = _js(driver, "return [...document.querySelectorAll(arguments[0] + ' tr.attempt')].map(r => "
                           "r.cells[0].textContent + '/' + r.cells[2].textContent)", detail)
    assert attempts == [f"{gw.row(ids[0])['deployment']}/ok"]

    # Spend per key and per user equals the ledger's exact sum.
    _open_tab(driver, "spend")
    driver.find_element(By.CSS_SELECTOR, '#spend-form button[data-range="24"]').click()
    _wait(lambda: _text(driver, f'#spend-table tr[data-series="{key_id}"] td.total'), "the key's spend")
    exact = _js(driver, "return document.querySelector(arguments[0]).dataset.exact",
                f'#spend-table tr[data-series="{key_id}"] td.total')
    assert Decimal(exact) == sum(costs.values())
    driver.find_element(By.CSS_SELECTOR, "#spend-form select[name=by] option[value=user]").click()
    driver.find_element(By.CSS_SELECTOR, "#spend-form button[type=submit]").click()
    _wait(lambda: _text(driver, '#spend-table tr[data-series="u-42"] td.total'), "the end user's spend")
    assert Decimal(_js(driver, "return document.querySelector('#spend-table tr[data-series=\"u-42\"] td.total')"
                               ".dataset.exact")) == sum(costs.values())

    # Rotate (the new secret once), then revoke: the key is refused.
    _open_tab(driver, "keys")
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f'tr[data-key-id="{key_id}"] button.rotate'), "rotate")
    driver.find_element(By.CSS_SELECTOR, f'tr[data-key-id="{key_id}"] button.rotate').click()
    driver.switch_to.alert.accept()  # the grace period's default, 24h
    rotated = _wait(lambda: _text(driver, "#new-secret-value"), "the rotated secret")
    assert rotated != secret and rotated.startswith(f"tw_{key_id}_")
    _wait(lambda: _text(driver, f'tr[data-key-id="{key_id}"] td.state').startswith("rotated (old secret until"),
          "the rotated key's state")
    driver.save_screenshot(str(tmp_path / "admin-keys.png"))
    driver.find_element(By.CSS_SELECTOR, f'tr[data-key-id="{key_id}"] button.revoke').click()
    driver.switch_to.alert.accept()
    _wait(lambda: _text(driver, f'tr[data-key-id="{key_id}"] td.state') == "revoked", "the revoked key")
    with pytest.raises(openai.AuthenticationError):
        gw.client(api_key=rotated).chat.completions.create(**chat())

    # The audit log, in the UI and in the database: who did what, without a secret.
    _open_tab(driver, "audit")
    _wait(lambda: _js(driver, "return [...document.querySelectorAll('#audit-table tr[data-action]')]"
                              ".map(r => r.dataset.action).join(' ')").startswith("key.revoked key.rotated key.created"),
          "the key's actions in the audit log")
    assert "alice@example.com" in _text(driver, "#audit-table tbody tr td.who")
    assert HOSTILE_NAME in _text(driver, '#audit-table tr[data-action="key.created"] td.diff').replace('\\"', '"')
    assert _js(driver, "return window.pwned") is None
    rows = audit_rows(gw.ledger)
    assert ("login", "alice@example.com") in [(r["action"], r["email"]) for r in rows]
    for row in rows:
        assert secret not in str(row) and rotated not in str(row)

    # Sign out: the session is gone, the page asks to sign in.
    driver.find_element(By.CSS_SELECTOR, "#logout-form button").click()
    _wait(lambda: driver.find_elements(By.ID, "sso"), "the sign-in page after signing out")
    assert "logout" in [r["action"] for r in audit_rows(gw.ledger)]

    # A viewer: no write controls, and writes forged from the page are refused.
    _sign_in(driver, gw, "vera")
    assert _text(driver, "#me-role") == "viewer"
    _wait(lambda: _js(driver, "return document.querySelectorAll('#keys-table tbody tr').length") == 1, "the keys")
    assert _js(driver, "return document.querySelectorAll('.write, button.revoke, button.rotate, #key-form').length") == 0
    forged = _fetch(driver, "POST", "/admin/keys", {"name": "viewer-made"}, csrf=True)
    assert forged["status"] == 403 and "viewer" in forged["body"]["error"]["message"]
    forged = _fetch(driver, "POST", f"/admin/keys/{key_id}/rotate", None, csrf=True)
    assert forged["status"] == 403
    no_token = _fetch(driver, "POST", "/admin/keys", {"name": "no-csrf"}, csrf=False)
    assert no_token["status"] == 403 and no_token["body"]["error"]["code"] == "csrf_failed"
    refused = [(r["action"], r["outcome"], r["email"]) for r in audit_rows(gw.ledger)]
    assert ("key.created", "refused", "vera@example.com") in refused
    assert ("admin.refused", "refused", "") in refused  # the request without a CSRF token

    # A team admin: write controls only on its team's keys.
    _sign_in(driver, gw, "tom")
    assert _text(driver, "#me-role") == "team_admin of search"
    driver.find_element(By.NAME, "name").send_keys("tom-made")
    driver.find_element(By.NAME, "team").send_keys("ads")
    driver.find_element(By.ID, "key-submit").click()
    _wait(lambda: "403" in _text(driver, "#message") and "team_admin" in _text(driver, "#message"),
          "the refusal of a key for another team")


def test_sign_in_page_escapes_and_refuses(admin_ui, browser):
    gw, driver = admin_ui, browser
    driver.get(f"{gw.url}/admin/ui/callback?error=access_denied&error_description=<script>window.pwned=1</script>")
    assert "access_denied: <script>window.pwned=1</script>" in _text(driver, "#signin-error")
    assert _js(driver, "return window.pwned") is None
    # An account with no mapped role signs in at the provider but gets no session.
    driver.delete_all_cookies()
    driver.get(f"{gw.url}/admin/ui")
    driver.find_element(By.ID, "sso").click()
    _wait(lambda: driver.find_elements(By.ID, "login"), f"the provider's login form (at {driver.current_url})")
    driver.find_element(By.ID, "login").send_keys("nobody")
    driver.find_element(By.ID, "login-submit").click()
    _wait(lambda: "no tollway role" in _text(driver, "#signin-error"), "the refusal")
    assert not [c for c in driver.get_cookies() if c["name"] == "tollway_admin_session"]
    # A callback that was not started here (no state cookie) is refused.
    driver.get(f"{gw.url}/admin/ui/callback?code=stolen&state=guess")
    assert "not started here" in _text(driver, "#signin-error")
    # The admin key signs in too.
    driver.get(f"{gw.url}/admin/ui")
    driver.find_element(By.NAME, "key").send_keys("wrong")
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    _wait(lambda: "wrong admin key" in _text(driver, "#signin-error"), "the wrong key refused")

"""The dashboard in a real headless Chromium: it logs in with the admin key, shows a known ledger's figures,
and updates itself after new requests."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat
from tests.observe.support import ADMIN_KEY, observed_config, row, write_ledger
from tollway.core.money_text import usd_text

pytestmark = pytest.mark.slow


def _known_ledger(now: datetime) -> list:
    recent = (now - timedelta(minutes=10)).isoformat()
    return [
        row("a", recent, cost="0.001", prompt=100, completion=50, ttft=100, latency=400),
        row("b", recent, cost="0.002", prompt=200, completion=80, ttft=300, latency=600),
        row("c", recent, cost="0.0005", prompt=50, completion=10, ttft=200, latency=500),
        row("d", recent, provider="qwen", model="qwen3.5-plus", deployment="qwen-plus", cost="0.01",
            prompt=1000, completion=500, ttft=150, latency=900),
        row("e", recent, provider="", model="", deployment="", status="error", http_status=502),
        row("old", (now - timedelta(days=3)).isoformat(), cost="5", prompt=1, completion=1),  # outside 24 h
    ]


def _text(driver, selector: str, attribute: str | None = None) -> str:
    """Read in one script call: the page redraws its rows every refresh, so element handles go stale."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e === null ? '' : (arguments[1] ? e.getAttribute(arguments[1]) : e.textContent);",
        selector, attribute)


def _cell(driver, model: str, name: str) -> str:
    return _text(driver, f'tr[data-model="{model}"] td.{name}')


def _wait(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.1)


def test_dashboard_shows_the_ledger_and_updates(emulator_factory, gateway_factory, browser, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 9}}})
    ledger = tmp_path / "known.db"
    write_ledger(ledger, _known_ledger(datetime.now(UTC)))
    config = observed_config(emu, observe={"dashboard": {"refresh_s": 0.3}})
    gw = gateway_factory(config, env={**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY},
                         extra_args=("--ledger", str(ledger)))
    gw.ledger = ledger  # the later --ledger wins over the factory's

    assert httpx.get(f"{gw.url}/dashboard").status_code == 401
    assert httpx.get(f"{gw.url}/dashboard/data.json").status_code == 401
    assert httpx.get(f"{gw.url}/dashboard?key=wrong").status_code == 401
    assert httpx.get(f"{gw.url}/dashboard/data.json", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200

    browser.get(f"{gw.url}/dashboard?key={ADMIN_KEY}")
    assert browser.current_url == f"{gw.url}/dashboard", "the key leaves the address bar"
    _wait(lambda: _cell(browser, "deepseek/deepseek-flash", "cost") == "$0.0035", "the ledger's deepseek spend")
    assert _text(browser, 'tr[data-model="deepseek/deepseek-flash"] td.cost', "data-exact") == "0.0035"
    assert _cell(browser, "deepseek/deepseek-flash", "requests") == "3"
    assert _cell(browser, "deepseek/deepseek-flash", "prompt-tokens") == "350"
    assert _cell(browser, "deepseek/deepseek-flash", "ttft") == "200 / 298"      # p50 / p99 of 100, 200, 300
    assert _cell(browser, "deepseek/deepseek-flash", "latency") == "500 / 598"
    assert _cell(browser, "qwen/qwen3.5-plus", "cost") == "$0.01"
    assert _cell(browser, "(none)/chat", "errors") == "1"
    assert _text(browser, "#total-cost", "data-exact") == "0.0135"
    assert _text(browser, "#total-requests") == "5"
    assert _text(browser, "#total-error-rate") == "20.0%"
    assert _text(browser, '#breakers tr[data-deployment="ds-flash"] .state') == "closed"
    browser.save_screenshot(str(tmp_path / "dashboard-before.png"))

    client = gw.client()
    ids = [client.chat.completions.with_raw_response.create(**chat()).headers["x-request-id"] for _ in range(2)]
    new_cost = sum((Decimal(gw.row(i)["cost_usd"]) for i in ids), Decimal(0))
    assert new_cost > 0
    expected = Decimal("0.0035") + new_cost
    _wait(lambda: _cell(browser, "deepseek/deepseek-flash", "requests") == "5", "the two new requests")
    assert Decimal(_text(browser, 'tr[data-model="deepseek/deepseek-flash"] td.cost', "data-exact")) == expected
    assert _cell(browser, "deepseek/deepseek-flash", "cost") == usd_text(expected)
    assert _cell(browser, "deepseek/deepseek-flash", "completion-tokens") == str(50 + 80 + 10 + 9 + 9)
    assert Decimal(_text(browser, "#total-cost", "data-exact")) == Decimal("0.0135") + new_cost
    browser.save_screenshot(str(tmp_path / "dashboard-after.png"))
    assert (tmp_path / "dashboard-after.png").stat().st_size > 10_000

    browser.set_window_size(375, 812)  # a phone: the page reflows, wide tables scroll inside their panels
    _wait(lambda: browser.execute_script("return window.innerWidth") <= 400, "the narrow window")
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 375px screen"
    assert _text(browser, "#total-cost") == usd_text(Decimal(_text(browser, "#total-cost", "data-exact")))

"""Alerts reach a real webhook receiver: a spend spike against the weekly baseline (one page per incident,
naming every series its traffic tripped), a lasting drift (one page per metric, with the full change), and a
repointed alias."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.accounting.support import Admin
from tests.gateway.support import PROVIDER_KEYS, chat
from tests.observe.support import (
    ADMIN_KEY,
    WebhookReceiver,
    observed_config,
    row,
    scrape,
    write_ledger,
)

pytestmark = pytest.mark.slow
ENV = {**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY}


def _usual_traffic(now: datetime) -> list:
    """Two past weeks at this hour and weekday: 0.0036 USD and 60,000 tokens an hour on group chat, i.e.
    0.00006 USD and 1,000 tokens in a 60 s window."""
    rows = []
    for week in (1, 2):
        at = now - timedelta(weeks=week)
        for i in range(6):
            ts = (at + timedelta(seconds=i)).isoformat()
            rows.append(row(f"w{week}-{i}", ts, cost="0.0006", prompt=5000, completion=5000))
    return rows


def _alert_config(emu, receiver: WebhookReceiver) -> dict:
    return observed_config(emu, observe={"alerts": {
        "window_s": 60, "evaluate_every_s": 0.2, "thresholds": [],
        "baseline": {"factor": 3, "min_cost_usd": "0.001", "min_tokens": 1000},
        "drift": {"enabled": False}, "webhook": {"url": receiver.url, "retries": 0}}})


def test_spend_spike_raises_exactly_one_alert(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 16}}})
    ledger = tmp_path / "history.db"
    write_ledger(ledger, _usual_traffic(datetime.now(UTC)))
    with WebhookReceiver() as receiver:
        gw = gateway_factory(_alert_config(emu, receiver), env=ENV, extra_args=("--ledger", str(ledger)))
        client = gw.client()
        for _ in range(5):  # usual traffic: far below 3x the baseline
            client.chat.completions.create(**chat())
        time.sleep(1.5)
        assert receiver.bodies == [], "ordinary traffic must not page"
        emu.set_profile("deepseek-flash", {"output_tokens": 4000})  # the same requests now cost ~250x more
        for _ in range(5):
            client.chat.completions.create(**chat())
        bodies = receiver.wait_for(1)
        time.sleep(1.5)  # several more evaluations while the spike is still in the window
        assert len(receiver.bodies) == 1, [b["text"] for b in receiver.bodies]
    body = bodies[0]
    alert = body["tollway"]
    assert alert["kind"] == "spend_anomaly" and alert["severity"] == "critical"
    assert (alert["scope"], alert["subject"]) == ("deployment", "ds-flash")
    assert "route_group chat" in alert["title"], "the group's identical spike is named in the same alert"
    assert body["text"].startswith(":rotating_light: tollway critical: Spend spike")
    assert body["attachments"][0]["text"] == alert["detail"]
    assert "this hour on this weekday over 2 week(s)" in alert["detail"]
    m = scrape(gw.url)
    assert m[("tollway_alerts_total", (("kind", "spend_anomaly"), ("severity", "critical")))] == 1
    assert "alert" in gw.log_text() and "Spend spike" in gw.log_text()


def test_one_keys_spike_on_a_shared_route_pages_once_naming_the_key_deployment_and_route(
        emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 16}}})
    ledger = tmp_path / "history.db"
    write_ledger(ledger, _usual_traffic(datetime.now(UTC)))
    with WebhookReceiver() as receiver:
        config = _alert_config(emu, receiver)
        config["observe"]["alerts"]["baseline"]["min_cost_usd"] = "0.0005"
        gw = gateway_factory(config, env=ENV, extra_args=("--ledger", str(ledger)))
        admin = Admin(gw, key=ADMIN_KEY)
        (spiker, spiker_secret), (_, other_secret) = admin.create_key(name="spiker"), admin.create_key(name="other")
        for secret in (spiker_secret, other_secret):  # both keys share route group chat and deployment ds-flash
            for _ in range(5):
                gw.client(api_key=secret).chat.completions.create(**chat())
        time.sleep(1.5)
        assert receiver.bodies == [], "ordinary traffic must not page"
        emu.set_profile("deepseek-flash", {"output_tokens": 4000})
        for _ in range(5):
            gw.client(api_key=spiker_secret).chat.completions.create(**chat())
        receiver.wait_for(1)
        time.sleep(1.5)  # several more evaluations while the spike is still in the window
        assert len(receiver.bodies) == 1, [b["text"] for b in receiver.bodies]
    alert = receiver.alerts()[0]
    assert (alert["kind"], alert["scope"], alert["subject"]) == ("spend_anomaly", "key", spiker)
    assert alert["title"].endswith("(also deployment ds-flash, route_group chat)"), alert["title"]
    assert "The same traffic took deployment ds-flash to" in alert["detail"]
    m = scrape(gw.url)
    assert m[("tollway_alerts_total", (("kind", "spend_anomaly"), ("severity", "critical")))] == 1


def test_two_keys_spiking_on_their_own_routes_page_twice(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 4000}, "kimi-k2.5": {"output_tokens": 4000}}})
    ledger = tmp_path / "history.db"
    write_ledger(ledger, _usual_traffic(datetime.now(UTC)))
    with WebhookReceiver() as receiver:
        config = _alert_config(emu, receiver)
        config["observe"]["alerts"]["baseline"]["min_cost_usd"] = "0.0005"
        config["route_groups"]["code"] = {"deployments": ["kimi-big"]}
        gw = gateway_factory(config, env=ENV, extra_args=("--ledger", str(ledger)))
        admin = Admin(gw, key=ADMIN_KEY)
        (chatty, chatty_secret), (coder, coder_secret) = admin.create_key(name="chat"), admin.create_key(name="code")
        for _ in range(3):
            gw.client(api_key=chatty_secret).chat.completions.create(**chat())
            gw.client(api_key=coder_secret).chat.completions.create(**chat(model="code"))
        receiver.wait_for(2)
        time.sleep(1.5)
        assert len(receiver.bodies) == 2, [b["text"] for b in receiver.bodies]
    titles = {alert["subject"]: alert["title"] for alert in receiver.alerts() if alert["scope"] == "key"}
    assert set(titles) == {chatty, coder}
    assert titles[chatty].endswith("(also deployment ds-flash, route_group chat)"), titles[chatty]
    assert titles[coder].endswith("(also deployment kimi-big, route_group code)"), titles[coder]


def test_lasting_output_change_pages_once_per_metric_with_the_full_change(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 50}}})
    with WebhookReceiver() as receiver:
        config = _alert_config(emu, receiver)
        config["observe"]["alerts"]["baseline"] = {"enabled": False}
        config["observe"]["alerts"]["drift"] = {"recent_requests": 5, "reference_requests": 20, "min_reference": 10}
        gw = gateway_factory(config, env=ENV)
        client = gw.client()
        for _ in range(20):
            client.chat.completions.create(**chat())
        emu.set_profile("deepseek-flash", {"output_tokens": 500})
        for _ in range(25):
            client.chat.completions.create(**chat())
        receiver.wait_for(2)
        time.sleep(1.0)
        assert len(receiver.bodies) == 2, [b["text"] for b in receiver.bodies]
        rows = gw.rows(wait_for=45)
    before = {(r["completion_tokens"], Decimal(r["cost_usd"])) for r in rows[:20]}
    after = {(r["completion_tokens"], Decimal(r["cost_usd"])) for r in rows[20:]}
    assert len(before) == len(after) == 1, "every answer of a level alike, so the page's figures are exact"
    ((_, old_cost),), ((_, new_cost),) = before, after
    alerts = {a["kind"]: a for a in receiver.alerts()}
    output, cost = alerts["output_drift"], alerts["cost_drift"]
    assert output["title"] == "ds-flash: output length up 10.00x (deepseek/deepseek-flash)"
    assert (output["value"], output["expected"]) == ("500", "50")
    assert cost["title"] == f"ds-flash: cost per request up {new_cost / old_cost:.2f}x (deepseek/deepseek-flash)"
    assert (Decimal(cost["value"]), Decimal(cost["expected"])) == (new_cost, old_cost)


def test_a_new_system_fingerprint_pages_once(emulator_factory, gateway_factory, tmp_path):
    """The ledger's last rows of ds-flash carry fp_old; the emulator's DeepSeek answers carry another."""
    emu = emulator_factory()
    ledger = tmp_path / "history.db"
    recent = datetime.now(UTC) - timedelta(minutes=10)
    write_ledger(ledger, [row(f"h{i}", (recent + timedelta(seconds=i)).isoformat(), cost="0.00001", prompt=5,
                              completion=16, system_fingerprint="fp_old") for i in range(5)])
    with WebhookReceiver() as receiver:
        config = _alert_config(emu, receiver)
        config["observe"]["alerts"]["drift"] = {"fingerprint_samples": 3}
        gw = gateway_factory(config, env=ENV, extra_args=("--ledger", str(ledger)))
        client = gw.client()
        for _ in range(6):
            client.chat.completions.create(**chat())
        receiver.wait_for(1)
        time.sleep(1.0)
        assert len(receiver.bodies) == 1, [b["text"] for b in receiver.bodies]
    alert = receiver.alerts()[0]
    assert (alert["kind"], alert["subject"], alert["expected"], alert["value"]) == \
        ("fingerprint_change", "ds-flash", "fp_old", "fp_tollway_emulator")


def test_repointed_alias_raises_one_alert_then_none(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory()
    ledger = tmp_path / "shared.db"
    with WebhookReceiver() as receiver:
        cheap = _alert_config(emu, receiver)  # chat (alias gpt-4o-mini) -> ds-flash first
        first = gateway_factory(cheap, env=ENV, extra_args=("--ledger", str(ledger)))
        first.terminate()
        pricier = _alert_config(emu, receiver)
        pricier["route_groups"]["chat"]["deployments"] = ["kimi-big", "ds-flash"]
        second = gateway_factory(pricier, env=ENV, extra_args=("--ledger", str(ledger)))
        receiver.wait_for(1)
        second.terminate()
        third = gateway_factory(pricier, env=ENV, extra_args=("--ledger", str(ledger)))
        third.client().chat.completions.create(**chat(model="gpt-4o-mini"))
        time.sleep(1.0)
        third.terminate()
        assert len(receiver.bodies) == 1, [b["text"] for b in receiver.bodies]
    alert = receiver.alerts()[0]
    assert alert["kind"] == "route_repointed"
    assert alert["subject"] == "chat, gpt-4o-mini", "a group and its alias moved together: one alert"
    assert "from ds-flash to kimi-big" in alert["title"] and "upgrade" in alert["title"]
    assert (ledger.parent / "shared.db.routes.json").is_file()

"""`tollway usage` sums the ledger exactly, by day, model and provider."""

import os
import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tollway.core.money_text import usd_text

pytestmark = pytest.mark.slow


def usage(*args: str) -> subprocess.CompletedProcess:
    """Run `tollway usage` as a shell pipe would (pytest itself sets COLUMNS=80 in the environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([sys.executable, "-m", "tollway.cli", "usage", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_usage_totals_equal_the_ledger(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 9, "faults": [{"kind": "server_error",
                                                                                        "status": 500, "every": 3}]}}})
    gw = gateway_factory(emulator_config(emu, group=["ds-flash", "qwen-plus"], retry={"retries_per_deployment": 0}),
                         env=PROVIDER_KEYS)
    client = gw.client()
    for i in range(6):
        client.chat.completions.create(**chat(f"question {i}"), stream=bool(i % 2))
    rows = gw.rows(wait_for=6)
    result = usage("--ledger", str(gw.ledger), "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert Decimal(report["total_cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in rows) > 0
    by_provider = {line["provider"]: line for line in report["lines"]}
    assert set(by_provider) == {r["provider"] for r in rows} == {"deepseek", "qwen"}
    for provider, line in by_provider.items():
        mine = [r for r in rows if r["provider"] == provider]
        assert line["requests"] == len(mine)
        assert line["completion_tokens"] == sum(r["completion_tokens"] for r in mine)
        assert Decimal(line["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in mine)
    table = usage("--ledger", str(gw.ledger))
    assert table.returncode == 0 and "deepseek" in table.stdout and "total" in table.stdout
    shown = usd_text(Decimal(report["total_cost_usd"]))
    assert f" {shown} " in table.stdout, "the piped table shows the total whole, as money is shown everywhere"


def test_usage_names_a_missing_ledger_and_a_bad_since(tmp_path):
    missing = usage("--ledger", str(tmp_path / "none.db"))
    assert missing.returncode == 1 and f"no ledger at {tmp_path / 'none.db'}" in missing.stderr
    bad = usage("--ledger", str(tmp_path / "none.db"), "--since", "last tuesday")
    assert bad.returncode == 2 and "'last tuesday' is not a time: use e.g. 7d, 12h, 30m" in bad.stderr

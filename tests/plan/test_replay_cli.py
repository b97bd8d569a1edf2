"""`tollway replay` as a user runs it: a real `python -m tollway.cli replay` process on real files."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from tests.plan.support import CHEAP, DAY1, DAY2, candidate_file, known_rows, logged, write_ledger
from tests.processes import TOLLWAY

CHEAPEST = {"chat": {"deployments": ["dear", "cheap"], "strategy": "cheapest", "aliases": ["gpt-4o-mini"]}}


def run_replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "replay", *args], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    ledger = write_ledger(tmp_path / "ledger.db", known_rows())
    return str(candidate_file(tmp_path, CHEAPEST)), str(ledger)


def test_json_totals_by_group_and_day(files):
    config, ledger = files
    proc = run_replay("--config", config, "--ledger", ledger, "--json", "--rows")
    assert proc.returncode == 0, proc.stderr
    report = orjson.loads(proc.stdout)
    assert report["schema"] == "tollway.replay/v1" and report["ledger"] == ledger
    total = report["total"]
    assert (total["requests"], total["compared"]) == (3, 3)
    assert (total["candidate_usd"], total["compared_current_usd"], total["difference_usd"]) == \
        ("0.001244", "0.0046", "-0.003356")
    assert report["by_group"]["chat"]["candidate_usd"] == "0.001244"
    assert report["by_day"]["2026-10-05"]["candidate_usd"] == "0.000544"
    assert report["by_day"]["2026-10-06"]["difference_usd"] == "0"
    rows = {row["id"]: row for row in report["rows"]}
    assert rows["r1"]["candidate"]["deployments"] == [{"deployment": "cheap", "share": "1", "cost_usd": "0.000144"}]
    assert rows["r1"]["current"] == {"deployment": "dear", "cost_usd": "0.0009", "priced": True}
    assert rows["r3"]["candidate"]["deployments"][0]["deployment"] == "dear"
    assert rows["r1"]["candidate"]["route"].startswith("cheapest: cheap")


def test_terminal_table_says_what_would_have_been_saved(files):
    config, ledger = files
    proc = run_replay("--config", config, "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "would have saved $0.00336 (-73.0%)" in out
    assert "2026-10-05" in out and "2026-10-06" in out and "route group" in out
    assert "All 3 replayed requests cost $0.0046 " in out
    narrow = subprocess.run([*TOLLWAY, "replay", "--config", config, "--ledger", ledger], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert "…" not in narrow.stdout and max(map(len, narrow.stdout.splitlines())) <= 80, narrow.stdout
    assert "$0.00336" in narrow.stdout and "2026-10-05" in narrow.stdout


def test_csv_summary_and_rows(files):
    config, ledger = files
    proc = run_replay("--config", config, "--ledger", ledger, "--csv", "--include-failed")
    assert proc.returncode == 0, proc.stderr
    lines = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(line["split"], line["key"]) for line in lines] == [
        ("total", ""), ("group", "chat"), ("day", "2026-10-05"), ("day", "2026-10-06")]
    assert lines[0]["requests"] == "4"                       # the failed request too, never the shadow copy
    assert sum(Decimal(line["candidate_usd"]) for line in lines[2:]) == Decimal(lines[0]["candidate_usd"])
    proc = run_replay("--config", config, "--ledger", ledger, "--csv", "--rows")
    assert proc.returncode == 0, proc.stderr
    per_row = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["id"], r["candidate_deployments"], r["candidate_cost_usd"]) for r in per_row] == [
        ("r1", "cheap", "0.000144"), ("r2", "cheap", "0.0004"), ("r3", "dear", "0.0007")]


def test_unserveable_reasons_in_the_output(tmp_path):
    rows = [logged("image", DAY1, needs=("vision",)), logged("long", DAY1, prompt=9900, max_tokens=200),
            logged("eu", DAY2, residency=["eu"]), logged("ok", DAY2)]
    ledger = write_ledger(tmp_path / "ledger.db", rows)
    config = candidate_file(tmp_path, {"chat": {"deployments": ["cheap"]}}, {"cheap": CHEAP})
    proc = run_replay("--config", str(config), "--ledger", str(ledger), "--since", DAY1.date().isoformat())
    assert proc.returncode == 0, proc.stderr
    assert "1 capability, 1 context" in proc.stdout and "1 residency" in proc.stdout
    report = orjson.loads(run_replay("--config", str(config), "--ledger", str(ledger), "--json").stdout)
    assert report["total"]["unserveable"] == {"capability": 1, "context": 1, "residency": 1, "model": 0}


def test_an_empty_window_is_not_an_error(files):
    config, ledger = files
    proc = run_replay("--config", config, "--ledger", ledger, "--since", "2030-01-01")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to replay" in proc.stdout


def test_missing_ledger_is_named(tmp_path, files):
    config, _ = files
    proc = run_replay("--config", config, "--ledger", str(tmp_path / "nope.db"))
    assert proc.returncode == 1
    assert f"--ledger: no ledger file at {tmp_path / 'nope.db'}" in proc.stderr


def test_not_a_ledger_is_named(tmp_path, files):
    config, _ = files
    other = tmp_path / "other.db"
    import sqlite3
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    proc = run_replay("--config", config, "--ledger", str(other))
    assert proc.returncode == 1 and "has no 'requests' table" in proc.stderr


def test_bad_config_names_file_and_field(tmp_path, files):
    _, ledger = files
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: {p: {kind: deepseek, base_url: 'http://x/v1'}}\n"
                   "deployments: {d: {provider: p, model: deepseek-chat, contxt_window: 5}}\n")
    proc = run_replay("--config", str(bad), "--ledger", ledger)
    assert proc.returncode == 1
    assert str(bad) in proc.stderr and "deployments.d.contxt_window: unknown key" in proc.stderr
    proc = run_replay("--config", str(tmp_path / "absent.yaml"), "--ledger", ledger)
    assert proc.returncode == 1 and "absent.yaml: no such config file" in proc.stderr


def test_unknown_model_in_candidate_names_the_deployment(tmp_path, files):
    _, ledger = files
    config = candidate_file(tmp_path, {"chat": {"deployments": ["mystery"]}},
                            {"mystery": {"provider": "deepseek", "model": "no-such-model"}}, name="unknown.yaml")
    proc = run_replay("--config", str(config), "--ledger", ledger)
    assert proc.returncode == 1
    assert "deployments.mystery.model: 'no-such-model' is not in the catalog" in proc.stderr


def test_flag_mistakes_are_usage_errors(files):
    config, ledger = files
    for args, words in ((("--json", "--csv"), "choose one of --json and --csv"),
                        (("--rows",), "--rows goes with --json or --csv"),
                        (("--since", "2026-10-06", "--until", "2026-10-05"), "is not before --until"),
                        (("--since", "yesterday"), "'yesterday' is not an ISO date")):
        proc = run_replay("--config", config, "--ledger", ledger, *args)
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)


def test_secrets_in_a_ledger_url_are_not_printed(files):
    config, _ = files
    proc = run_replay("--config", config, "--ledger", "mysql://user:hunter2@db/ledger")
    assert proc.returncode == 1 and "hunter2" not in proc.stderr and "unsupported ledger URL scheme" in proc.stderr


def test_window_flags_are_utc(files):
    config, ledger = files
    until = (DAY1 + timedelta(hours=1)).isoformat()
    report = orjson.loads(run_replay("--config", config, "--ledger", ledger, "--until", until, "--json").stdout)
    assert report["total"]["requests"] == 1 and report["window"]["until"] == until

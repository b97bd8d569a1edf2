"""Every ledger reader reads the ledger `tollway serve` writes: --ledger, else the config found as serve
finds it (--config, ./tollway.yaml), else the default file; each says on stderr which file it read."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from tests.ledger.support import config_naming
from tests.observe.support import row, write_ledger

NOW = datetime.now(UTC).replace(microsecond=0).isoformat()

# (command line before the common options, what proves the marked ledger was read)
READERS = {
    "usage": (["usage", "--json"], lambda out: orjson.loads(out)["total_cost_usd"]),
    "report": (["report", "--json", "--since", "1d"], lambda out: orjson.loads(out)["total"]["cost_usd"]),
    "audit": (["audit", "residency", "--allowed", "us", "--json"], lambda out: str(orjson.loads(out)["requests"])),
}


def ledger_costing(path: Path, cost: str, requests: int = 1) -> Path:
    """A ledger of `requests` rows adding up to a recognisable cost, so the output says which was read."""
    attempts = [{"deployment": "ds-flash", "provider": "deepseek", "outcome": "ok", "jurisdiction": "us"}]
    write_ledger(path, [row(f"r{i}", NOW, cost=cost if i == 0 else "0", jurisdiction="us", attempts=attempts)
                        for i in range(requests)])
    return path


def run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TOLLWAY_CONFIG", "COLUMNS")}
    env.update(XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    return subprocess.run([sys.executable, "-m", "tollway.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """A project folder with a tollway.yaml naming ledger A, another config naming ledger B, and the
    default ledger C; each ledger has its own cost and number of rows."""
    project, elsewhere, home = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "home"
    for folder in (project, elsewhere, home / "data" / "tollway"):
        folder.mkdir(parents=True)
    a = ledger_costing(tmp_path / "a.db", "0.111", requests=1)
    b = ledger_costing(tmp_path / "b.db", "0.222", requests=2)
    ledger_costing(home / "data" / "tollway" / "ledger.db", "0.333", requests=3)
    (project / "tollway.yaml").write_text(yaml.safe_dump(config_naming(a)))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(config_naming(b)))
    return {"project": project, "elsewhere": elsewhere, "home": home, "root": tmp_path}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_uses_tollway_yaml_in_the_current_folder(folders, reader):
    args, read = READERS[reader]
    result = run(args, folders["project"], folders["home"])
    assert result.returncode == 0, result.stderr
    assert read(result.stdout) in ("0.111", "1")
    assert f"ledger: {folders['root'] / 'a.db'} (ledger.path in tollway.yaml)" in result.stderr


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_uses_the_config_given(folders, reader):
    args, read = READERS[reader]
    result = run([*args, "--config", str(folders["root"] / "other.yaml")], folders["project"], folders["home"])
    assert result.returncode == 0, result.stderr
    assert read(result.stdout) in ("0.222", "2")
    assert f"ledger: {folders['root'] / 'b.db'} (ledger.path in {folders['root'] / 'other.yaml'})" in result.stderr


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_without_a_config_uses_the_default_ledger(folders, reader):
    args, read = READERS[reader]
    result = run(args, folders["elsewhere"], folders["home"])
    assert result.returncode == 0, result.stderr
    assert read(result.stdout) in ("0.333", "3")
    default = folders["home"] / "data" / "tollway" / "ledger.db"
    assert f"ledger: {default} (the default; no tollway.yaml found)" in result.stderr


def test_ledger_flag_wins_over_the_config(folders):
    result = run(["usage", "--json", "--ledger", str(folders["root"] / "b.db")], folders["project"], folders["home"])
    assert result.returncode == 0 and orjson.loads(result.stdout)["total_cost_usd"] == "0.222"
    assert "ledger:" not in result.stderr, "the file the user named is not announced again"


def test_reconcile_reads_the_configured_ledger(folders):
    invoice = folders["root"] / "invoice.csv"
    invoice.write_text(f"date,model,cost\n{NOW[:10]},deepseek-flash,0.111\n")
    result = run(["reconcile", str(invoice), "--json"], folders["project"], folders["home"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert orjson.loads(result.stdout)["ledger_total_usd"] == "0.111"
    assert f"ledger: {folders['root'] / 'a.db'} (ledger.path in tollway.yaml)" in result.stderr


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_postgresql_ledger_is_named_not_replaced_by_a_stale_file(folders, reader):
    config = config_naming(folders["root"] / "a.db", database_url="postgresql://tollway@db.invalid/tollway")
    (folders["project"] / "tollway.yaml").write_text(yaml.safe_dump(config))
    args, _ = READERS[reader]
    result = run(args, folders["project"], folders["home"])
    assert result.returncode == 1 and result.stdout == "", "the stale file beside it is not read instead"
    assert "ledger: postgresql://tollway@db.invalid/tollway (database_url in tollway.yaml)" in result.stderr
    assert "Error: cannot connect to PostgreSQL at postgresql://tollway@db.invalid/tollway" in result.stderr


def test_a_broken_tollway_yaml_is_reported_not_skipped(folders):
    (folders["project"] / "tollway.yaml").write_text("providers: [\n")
    result = run(["usage"], folders["project"], folders["home"])
    assert result.returncode == 1 and "tollway.yaml: not valid YAML" in result.stderr


def test_a_named_ledger_is_read_even_beside_a_broken_tollway_yaml(folders):
    (folders["project"] / "tollway.yaml").write_text("providers: [\n")
    result = run(["usage", "--json", "--ledger", str(folders["root"] / "b.db")], folders["project"], folders["home"])
    assert result.returncode == 0 and orjson.loads(result.stdout)["total_cost_usd"] == "0.222"

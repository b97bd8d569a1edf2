"""CI smoke of the hot-path overhead benchmark: `run.py --quick` runs end to end and writes its report.

It asserts no speed (CI machines are shared and vary); it checks that every target was started, answered
every open-loop request it was sent, and appears in both report files, so a benchmark that silently
stopped measuring tollway would fail here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.processes import REPO

pytestmark = pytest.mark.slow

TARGETS = ("direct", "bare aiohttp proxy", "tollway")


def test_quick_benchmark_runs_and_writes_its_report(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "overhead" / "run.py"), "--quick",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, f"run.py --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"

    data = json.loads((tmp_path / "report.json").read_text())
    markdown = (tmp_path / "report.md").read_text()
    assert set(TARGETS) <= set(data["results"])
    for name in TARGETS:
        result = data["results"][name]
        assert f"| {name} |" in markdown
        for mode in ("non-streaming", "streaming"):
            run = result["open"][mode]
            assert run["errors"] == {}, f"{name} {mode}: failed requests {run['errors']}"
            assert run["measured"] == run["scheduled"] > 0, f"{name} {mode}: not every request answered"
            if mode == "streaming":
                assert run["ttft_ms"] is not None, f"{name}: no time to first token measured"
        if name != "direct":
            assert result["ready_s"] > 0 and result["rss_idle_mib"] > 0
            assert run["cpu_ms_per_request"] > 0, f"{name}: no gateway CPU measured"
    tollway = data["results"]["tollway"]
    assert tollway["extra"]["exit_code"] == 0, "tollway did not shut down cleanly"
    assert tollway["extra"]["ledger_rows"] >= sum(o["measured"] for o in tollway["open"].values())
    if shutil.which("wrk"):
        for name in TARGETS:
            for mode in ("non-streaming", "streaming"):
                closed = data["results"][name]["closed"][mode]
                assert closed["requests"] > 0 and closed["errors"] == 0, f"{name} {mode}: {closed}"
        # the translation rows: each client endpoint to each upstream shape, streamed and not, every answer a 200
        rows = {key: run for key, run in tollway["closed"].items() if " | " in key}
        assert len(rows) == 10, sorted(rows)
        for key, run in rows.items():
            assert run["requests"] > 0 and run["errors"] == 0, f"{key}: {run}"
        assert "## Translation paths" in markdown

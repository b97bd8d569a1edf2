"""CI smoke of the read-side benchmark at a tiny size: it fills a real PostgreSQL with generate_series,
builds the roll-ups, and both paths (roll-ups, raw rows) give the same report and observer history (the
harness exits non-zero when they differ). No speed is asserted: CI machines are shared and vary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.processes import REPO

pytestmark = pytest.mark.slow


def test_readside_benchmark_runs_at_a_tiny_size() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "readside" / "run.py"), "--days", "2",
                           "--rows-per-day", "1500", "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["rows"] == 3000
    assert result["report"]["requests"] > 0 and result["report"]["rollups_s"] > 0
    assert result["observer_start"]["window_rows"] > 0

"""`tollway bench --calibrate`: the client measures its own ceiling against a zero-delay emulator."""

from __future__ import annotations

import pytest
from rich.console import Console

from tollway.bench.calibrate import run_calibration

pytestmark = pytest.mark.slow


def test_calibration_reports_the_clients_own_cost_per_event():
    console = Console(record=True, width=160)
    points = run_calibration(console, levels=(1, 4), duration_s=0.5)
    assert [p.concurrency for p in points] == [1, 4]
    for point in points:
        # 64 one-token events per answer, so events/s is 64 x requests/s
        assert point.events_per_s == pytest.approx(64 * point.requests_per_s, rel=0.01)
        assert point.requests_per_s > 5
        assert 0 < point.client_cpu_us_per_event < 10_000
        assert point.events_per_s_at_full_core == pytest.approx(1e6 / point.client_cpu_us_per_event)
    text = console.export_text()
    assert "client ceiling: about" in text and "SSE events/s on one core" in text

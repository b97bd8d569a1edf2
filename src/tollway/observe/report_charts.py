"""`tollway report --png DIR`: spend per model, latency per model and spend per day as PNG charts.

Plotting is the one place floats are allowed: the figures were computed in Decimal and are converted
only to place pixels. matplotlib is imported lazily (Agg backend), so reports work without it unless
--png is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tollway.observe.report_data import Report


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise click.ClickException("--png needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_charts(report: Report, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    return [_spend_per_model(report, directory / "spend-per-model.png", plt),
            _latency_per_model(report, directory / "latency-per-model.png", plt),
            _spend_per_day(report, directory / "spend-per-day.png", plt)]


def _labels(report: Report) -> list[str]:
    return [f"{line.provider}/{line.model}" for line in report.lines]


def _spend_per_model(report: Report, path: Path, plt: Any) -> Path:
    fig, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * max(1, len(report.lines))))
    labels = _labels(report)
    ax.barh(labels, [float(line.cost_usd) for line in report.lines], color="#4aa3ff", label="spend")
    if report.baseline:
        ax.barh(labels, [float(line.baseline_cost_usd or 0) for line in report.lines], fill=False,
                edgecolor="#d62728", label=f"on {report.baseline}")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set_xlabel("USD")
    ax.set_title("Spend per provider and model")
    return _save(fig, path, plt)


def _latency_per_model(report: Report, path: Path, plt: Any) -> Path:
    lines = [line for line in report.lines if line.latency_ms]
    fig, ax = plt.subplots(figsize=(9, 0.5 + 0.6 * max(1, len(lines))))
    labels = [f"{line.provider}/{line.model}" for line in lines]
    positions = range(len(lines))
    for offset, (which, q, colour) in enumerate((("ttft_ms", 50, "#9ecae1"), ("ttft_ms", 99, "#3182bd"),
                                                 ("latency_ms", 50, "#fdae6b"), ("latency_ms", 99, "#e6550d"))):
        values = [line.quantile(which, q) or 0.0 for line in lines]
        ax.barh([p + offset * 0.2 for p in positions], values, height=0.2, color=colour,
                label=f"{'TTFT' if which == 'ttft_ms' else 'latency'} p{q}")
    ax.set_yticks([p + 0.3 for p in positions], labels)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds")
    ax.set_title("Time to first token and total latency (answered requests)")
    ax.legend(loc="lower right")
    return _save(fig, path, plt)


def _spend_per_day(report: Report, path: Path, plt: Any) -> Path:
    fig, ax = plt.subplots(figsize=(9, 3.5))
    days = list(report.daily_cost_usd)
    ax.bar(days, [float(v) for v in report.daily_cost_usd.values()], color="#4aa3ff")
    ax.set_ylabel("USD")
    ax.set_title("Spend per day (UTC)")
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, path, plt)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""PNG charts: monthly cost against daily volume (break-evens marked) and $/M tokens against utilisation.

Plotting is the one place floats are allowed: the figures were computed in Decimal and are converted
only to place pixels. matplotlib is imported lazily with the Agg backend, so the planner works (and
starts fast) without a display or without matplotlib at all unless --png is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tollway.plan.figures import months
from tollway.plan.planner import PlanResult
from tollway.plan.scenario import ScenarioError

MILLION = 1_000_000


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ScenarioError("--png needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_charts(result: PlanResult, directory: Path) -> list[Path]:
    """Write both charts into `directory` (created if needed) and return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    paths = [cost_vs_volume(result, directory / "cost-vs-volume.png", plt),
             cost_vs_utilisation(result, directory / "cost-per-million-vs-utilisation.png", plt)]
    return paths


def chart_limit(result: PlanResult) -> float:
    """The x range worth drawing: today, the projected volume and every break-even, with some margin."""
    today = float(result.workload.daily_tokens)
    wanted = [2.5 * today, 1.3 * today * float(result.projected_scale)]
    wanted += [1.15 * float(be.daily_tokens) for be in result.break_evens]
    return min(max(wanted), float(result.volume_range) * today)


def cost_vs_volume(result: PlanResult, path: Path, plt: Any) -> Path:
    fig, ax = plt.subplots(figsize=(10, 6))
    limit = chart_limit(result)
    for index, report in enumerate(result.options):
        fitting = [p for p in report.cost_curve if p.fits and float(p.x) <= limit]
        if fitting:
            ax.plot([float(p.x) / MILLION for p in fitting], [float(p.y) for p in fitting], color=f"C{index}",
                    label=f"{report.name} ({report.kind})", linewidth=1.8)
    legend_lines = []
    for number, be in enumerate(result.break_evens, start=1):
        if float(be.daily_tokens) > limit:
            continue
        x, y = float(be.daily_tokens) / MILLION, float(be.monthly_cost)
        ax.plot([x], [y], marker="o", color="black", markersize=5, zorder=5)
        ax.annotate(str(number), (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8, weight="bold")
        legend_lines.append(f"{number}: {be.cheaper_below} | {be.cheaper_above} at {x:,.0f}M/day")
    if legend_lines:
        ax.text(0.99, 0.02, "break-evens (cheaper below | above)\n" + "\n".join(legend_lines),
                transform=ax.transAxes, fontsize=7, ha="right", va="bottom",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    now = float(result.workload.daily_tokens) / MILLION
    ax.axvline(now, color="grey", linestyle="--", linewidth=1, label="today")
    if result.projected_scale != 1:
        ax.axvline(now * float(result.projected_scale), color="grey", linestyle=":", linewidth=1,
                   label=f"projected (in {months(result.economics.projection_months)})")
    ax.set_xlabel("daily volume (million tokens/day, input + output)")
    ax.set_ylabel("monthly cost (USD)")
    ax.set_title("Monthly cost against daily volume (a line ends where its option stops fitting the SLO)")
    ax.set_xlim(0, limit / MILLION)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost_vs_utilisation(result: PlanResult, path: Path, plt: Any) -> Path:
    fig, ax = plt.subplots(figsize=(10, 6))
    for index, report in enumerate(result.options):
        color = f"C{index}"
        if report.utilisation_curve:
            xs = [float(p.x) * 100 for p in report.utilisation_curve]
            ys = [float(p.y) for p in report.utilisation_curve]
            ax.plot(xs, ys, label=f"{report.name} ({report.kind})", linewidth=1.8, color=color)
            over = [(x, y) for x, y, p in zip(xs, ys, report.utilisation_curve, strict=True) if not p.fits]
            if over:
                over_x, over_y = zip(*over, strict=True)
                ax.plot(over_x, over_y, linestyle="none", marker="x", color=color, markersize=5)
            if report.utilisation is not None and report.usd_per_million is not None and report.utilisation <= 1:
                ax.plot([float(report.utilisation) * 100], [float(report.usd_per_million)], marker="o", color=color)
        elif report.usd_per_million is not None:
            ax.axhline(float(report.usd_per_million), linestyle="--", linewidth=1.2, color=color,
                       label=f"{report.name} ({report.kind}, flat)")
    ax.set_xlabel("utilisation (average load / paid capacity, %); x = above the SLO at peak")
    ax.set_ylabel("effective USD per 1M tokens")
    ax.set_title("Effective $/M tokens against utilisation (dots: today)")
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

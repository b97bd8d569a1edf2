"""PNG plots: latency percentiles and throughput against concurrency or rate, one line per target.

Why these two figures: the latency figure shows where each option stops meeting the SLOs (p50 solid,
p99 dashed with its confidence band, SLO as a horizontal line); the throughput figure shows what each
option delivers at that load. Invalid open-loop levels are marked with a cross.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from tollway.bench.level_summary import LevelSummary  # noqa: E402
from tollway.bench.loadgen import CONCURRENCY  # noqa: E402
from tollway.bench.runner import BenchResult  # noqa: E402

LATENCY_PANELS = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl_token", "ITL per token"), ("e2e", "end-to-end"))


def _x_label(result: BenchResult) -> str:
    mode = result.config.levels[0].mode if result.config.levels else CONCURRENCY
    return "concurrency (closed loop)" if mode == CONCURRENCY else "offered rate, req/s (open loop)"


def _style_x(axis, levels: list[float]) -> None:
    if levels and max(levels) / max(min(levels), 1e-9) >= 8:
        axis.set_xscale("log", base=2)
    axis.set_xticks(levels)
    axis.set_xticklabels([f"{v:g}" for v in levels], fontsize=7)
    axis.grid(True, alpha=0.3)


def _series(levels: list[LevelSummary], metric: str, stat: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for summary in levels:
        dist = summary.latency_ms.get(metric)
        if dist is not None:
            xs.append(summary.level)
            ys.append(getattr(dist, stat))
    return xs, ys


def latency_plot(result: BenchResult, path: Path) -> Path:
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    all_levels = sorted({s.level for r in result.results for s in r.levels})
    slo_ms = result.config.slo.as_ms()
    for axis, (metric, title) in zip(axes.flat, LATENCY_PANELS, strict=True):
        for index, target_result in enumerate(result.results):
            color = f"C{index}"
            levels = sorted(target_result.levels, key=lambda s: s.level)
            xs, p50 = _series(levels, metric, "p50")
            _, p99 = _series(levels, metric, "p99")
            _, low = _series(levels, metric, "p99_ci_low")
            _, high = _series(levels, metric, "p99_ci_high")
            axis.plot(xs, p50, "o-", color=color, label=f"{target_result.target.name} p50")
            axis.plot(xs, p99, "s--", color=color, label=f"{target_result.target.name} p99")
            axis.fill_between(xs, low, high, color=color, alpha=0.15)
            bad = [(s.level, summary.p99) for s in levels
                   if not s.valid and (summary := s.latency_ms.get(metric)) is not None]
            if bad:
                axis.plot([level for level, _ in bad], [p99 for _, p99 in bad], "x", color="red", markersize=10)
        bound = slo_ms.get(metric)
        if bound:
            axis.axhline(bound, color="grey", linestyle=":", label="SLO")
        axis.set_title(f"{title} (ms)")
        axis.set_xlabel(_x_label(result))
        _style_x(axis, all_levels)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle("Latency: p50 (solid), p99 (dashed, 95% CI band); red x = invalid run")
    return _save(figure, path)


THROUGHPUT_PANELS = (("requests_per_s", "requests/s"), ("output_tokens_per_s", "output tokens/s"),
                     ("goodput_share", "goodput (share meeting SLOs)"))


def _throughput_value(summary: LevelSummary, key: str) -> float:
    if key == "goodput_share":
        return summary.goodput.share * 100.0
    return getattr(summary.throughput, key)


def throughput_plot(result: BenchResult, path: Path) -> Path:
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    all_levels = sorted({s.level for r in result.results for s in r.levels})
    for axis, (key, title) in zip(axes, THROUGHPUT_PANELS, strict=True):
        for index, target_result in enumerate(result.results):
            levels = sorted(target_result.levels, key=lambda s: s.level)
            axis.plot([s.level for s in levels], [_throughput_value(s, key) for s in levels], "o-",
                      color=f"C{index}", label=target_result.target.name)
        if key == "goodput_share":
            axis.axhline(result.config.goodput_target * 100.0, color="grey", linestyle=":", label="target")
            axis.set_ylim(-2, 102)
            title += " %"
        axis.set_title(title)
        axis.set_xlabel(_x_label(result))
        _style_x(axis, all_levels)
    axes[0].legend(fontsize=8)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_plots(result: BenchResult, directory: Path) -> list[Path]:
    """Write latency.png and throughput.png into `directory`."""
    directory = Path(directory)
    return [latency_plot(result, directory / "latency.png"), throughput_plot(result, directory / "throughput.png")]

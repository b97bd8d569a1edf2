"""The benchmark's report: report.json (everything) and report.md (the tables docs/performance.md quotes)."""

from __future__ import annotations

import json
from pathlib import Path

from measure import MODES, TargetResult

DIRECT, BARE, TOLLWAY, LITELLM = "direct", "bare aiohttp proxy", "tollway", "LiteLLM proxy"


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}x"


def _pct(stats: dict | None, key: str) -> float | None:
    return stats.get(key) if stats else None


def _added(results: dict[str, TargetResult], name: str, mode: str, metric: str, key: str) -> float | None:
    mine, direct = results.get(name), results.get(DIRECT)
    if not mine or not direct or mode not in mine.open or mode not in direct.open:
        return None
    a, b = _pct(getattr(mine.open[mode], metric), key), _pct(getattr(direct.open[mode], metric), key)
    return None if a is None or b is None else a - b


def closed_table(results: dict[str, TargetResult]) -> list[str]:
    lines = ["| target | mode | max req/s | gateway CPU ms/request | upstream CPU ms/request | wrk p50 ms | wrk p99 ms | errors |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, res in results.items():
        for mode in MODES:
            c = res.closed.get(mode)
            if c:
                lines.append(f"| {name} | {mode} | {c.rps:,.0f} | {_f(c.cpu_ms_per_request)} | "
                             f"{_f(c.upstream_cpu_ms_per_request)} | {_f(c.p50_ms, 2)} | {_f(c.p99_ms, 2)} | {c.errors} |")
    return lines


def ratio_table(results: dict[str, TargetResult]) -> list[str]:
    tw, bare, lite = results.get(TOLLWAY), results.get(BARE), results.get(LITELLM)
    if not tw:
        return []
    lines = [("| mode | tollway CPU / bare proxy CPU | tollway req/s / bare proxy req/s | "
              "LiteLLM CPU / tollway CPU | tollway req/s / LiteLLM req/s |"), "| --- | ---: | ---: | ---: | ---: |"]
    for mode in MODES:
        t = tw.closed.get(mode)
        b = bare.closed.get(mode) if bare else None
        lt = lite.closed.get(mode) if lite else None
        if not t:
            continue
        lines.append(f"| {mode} | {_ratio(t.cpu_ms_per_request, b and b.cpu_ms_per_request)} | "
                     f"{_ratio(t.rps, b and b.rps)} | {_ratio(lt and lt.cpu_ms_per_request, t.cpu_ms_per_request)} | "
                     f"{_ratio(t.rps, lt and lt.rps)} |")
    return lines


def translation_table(results: dict[str, TargetResult]) -> list[str]:
    """tollway's other endpoints and upstream dialects beside its chat path, each mode's ratio in this run."""
    import translation_rows

    tw = results.get(TOLLWAY)
    if not tw or not any(translation_rows.key(row, mode) in tw.closed for row in translation_rows.ROWS
                         for mode in MODES):
        return []
    lines = ["| path | mode | gateway CPU ms/request | ratio to the chat path | max req/s | errors |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for mode in MODES:
        chat = tw.closed.get(mode)
        if chat:
            lines.append(f"| /v1/chat/completions -> OpenAI upstream (pass-through) | {mode} | "
                         f"{_f(chat.cpu_ms_per_request)} | 1.00x | {chat.rps:,.0f} | {chat.errors} |")
        for row in translation_rows.ROWS:
            c = tw.closed.get(translation_rows.key(row, mode))
            if c:
                lines.append(f"| {row.name} | {mode} | {_f(c.cpu_ms_per_request)} | "
                             f"{_ratio(c.cpu_ms_per_request, chat and chat.cpu_ms_per_request)} | {c.rps:,.0f} | "
                             f"{c.errors} |")
    return lines


def open_table(results: dict[str, TargetResult]) -> list[str]:
    lines = [("| target | mode | rate/s | answered | errors | p50 ms | p99 ms | added p50 ms | added p99 ms | "
              "TTFT p50 ms | added TTFT p50 ms | added TTFT p99 ms | gateway CPU ms/request |"),
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, res in results.items():
        for mode in MODES:
            o = res.open.get(mode)
            if not o:
                continue
            errors = sum(o.errors.values()) if o.errors else 0
            lines.append(
                f"| {name} | {mode} | {o.rate:g} | {o.measured} | {errors} | {_f(_pct(o.latency_ms, 'p50'), 2)} | "
                f"{_f(_pct(o.latency_ms, 'p99'), 2)} | {_f(_added(results, name, mode, 'latency_ms', 'p50'), 2)} | "
                f"{_f(_added(results, name, mode, 'latency_ms', 'p99'), 2)} | {_f(_pct(o.ttft_ms, 'p50'), 2)} | "
                f"{_f(_added(results, name, mode, 'ttft_ms', 'p50'), 2)} | "
                f"{_f(_added(results, name, mode, 'ttft_ms', 'p99'), 2)} | {_f(o.cpu_ms_per_request)} |")
    return lines


def memory_table(results: dict[str, TargetResult]) -> list[str]:
    lines = ["| target | ready after start s | RSS idle MiB | RSS after load MiB | processes |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, res in results.items():
        if name != DIRECT:
            lines.append(f"| {name} | {_f(res.ready_s, 2)} | {_f(res.rss_idle_mib, 1)} | {_f(res.rss_after_mib, 1)} | "
                         f"{res.processes or '–'} |")
    return lines


def soak_lines(results: dict[str, TargetResult]) -> list[str]:
    lines = []
    for name, res in results.items():
        if res.soak:
            first, last = res.soak[0], res.soak[-1]
            series = ", ".join(f"{n:,}: {mib:.1f}" for n, mib in res.soak)
            lines.append(f"- {name}: RSS {first[1]:.1f} MiB after {first[0]:,} requests, {last[1]:.1f} MiB after "
                         f"{last[0]:,} ({last[1] - first[1]:+.1f} MiB). Series (requests: MiB): {series}")
    return lines


def write(out: Path, meta: dict, results: dict[str, TargetResult], extras: dict[str, list[str]]) -> Path:
    """Write report.json and report.md into `out`; return the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "results": {k: v.to_json() for k, v in results.items()},
            "extras": {k: v for k, v in extras.items()}}
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str))
    md = [f"# tollway hot-path overhead — {meta['date']}", "",
          f"Command: `{meta['command']}`", "",
          "| | |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in meta.items() if k not in ("command", "date")]
    features = results[TOLLWAY].extra.get("features_on") if TOLLWAY in results else None
    if features:
        md += ["", "tollway ran with: " + "; ".join(features) + "."]
    md += ["", "## Closed loop (wrk, maximum throughput)", "", *closed_table(results), "",
           "## Ratios", "", *ratio_table(results), "",
           *(["## Translation paths (tollway, same rounds as its chat path)", "", *translation, ""]
             if (translation := translation_table(results)) else []),
           "## Open loop (fixed rate, latency from the scheduled send time)", "", *open_table(results), "",
           "## Start-up and memory", "", *memory_table(results), ""]
    soak = soak_lines(results)
    if soak:
        md += ["## Soak (RSS while answering many requests)", "", *soak, ""]
    notes = [f"- {name}: {note}" for name, res in results.items() for note in res.notes]
    if notes:
        md += ["## Notes", "", *notes, ""]
    for title, lines in extras.items():
        md += [f"## {title}", "", *lines, ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path

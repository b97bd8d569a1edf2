"""A single self-contained HTML file: the tables, the plots (embedded as data URIs) and the provenance.

Why self-contained: the report gets attached to a ticket or a procurement decision and must still open
in a year, with no server and no network.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from rich.console import Console

from tollway.bench.report_json import dumps, report_dict
from tollway.bench.report_table import print_report
from tollway.bench.runner import BenchResult

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}} img{{max-width:100%}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}} h2{{margin-top:1.5em}}</style>
</head><body>
<h1>{title}</h1>
<p>Started {started}; targets: {targets}. Metric definitions: docs/bench.md in the tollway repository.</p>
<h2>Results</h2>
{tables}
{images}
<h2>Provenance and configuration</h2>
<pre>{provenance}</pre>
</body></html>
"""


def _tables_html(result: BenchResult) -> str:
    """Every table and note, as the terminal shows them with --wide.

    Printed into a recording console that writes to a string: Console.capture() would take the output
    away from the recording, leaving the export empty.
    """
    console = Console(file=io.StringIO(), record=True, width=240, color_system="truecolor")
    print_report(result, console, wide=True)
    return console.export_html(inline_styles=True, code_format="<pre style=\"font-size:12px\">{code}</pre>")


def _image(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<p><img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}"></p>'


def _images_html(plot_paths: list[Path]) -> str:
    if not plot_paths:
        return ""  # --no-plots, or matplotlib is not installed: no section rather than an empty one
    return "<h2>Plots</h2>\n" + "\n".join(_image(p) for p in plot_paths)


def write_html(result: BenchResult, path: Path, plot_paths: list[Path], command: list[str] | None = None) -> Path:
    data = report_dict(result, command)
    provenance = {key: data[key] for key in ("provenance", "config", "targets")}
    page = PAGE.format(
        title="tollway bench report", started=html.escape(result.started_at.isoformat()),
        targets=html.escape(", ".join(f"{r.target.name} ({r.target.model})" for r in result.results)),
        tables=_tables_html(result), images=_images_html(plot_paths),
        provenance=html.escape(dumps(provenance).decode()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path

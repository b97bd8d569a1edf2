"""Where tollway's CPU goes under load: py-spy samples the running gateway while wrk drives it.

py-spy reads the process from outside (no instrumentation, so the profile is of the real hot path); it
runs on the load core so it does not steal the gateway's. Only the thread holding the GIL is sampled
(`--gil`): a thread waiting on a queue or a lock costs no CPU and must not show up as a cost. Time in C
below the event loop (uvloop's socket reads and writes, its callbacks) has no Python frame and is charged
to the loop's entry (asyncio's `Runner.run`; aiohttp's `run_app` for the bare proxy). The raw collapsed stacks are summarised three
ways: by library/area (what to replace), by leaf function (what burns the cycles), and by tollway
function including callees (which of our lines to change). Summaries are small text files kept in
results/; the raw stacks stay in the work directory (and render as a flame graph with any
collapsed-stack tool, e.g. `flamegraph.pl` or speedscope).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from targets import Target, pinned
from wrk import chat_body, run_wrk

# first match wins: the area a sampled leaf frame is charged to
AREAS = (
    ("tollway: ledger writer (thread)", ("tollway/accounting/ledger",)),
    ("sqlite3", ("sqlite3",)),
    ("tollway: request handling", ("tollway/gateway", "tollway/routing", "tollway/accounting", "tollway/observe",
                                   "tollway/providers")),
    ("aiohttp client", ("aiohttp/client", "aiohttp/connector", "aiohttp/streams", "aiohttp/tracing",
                        "aiohttp/cookiejar", "aiohttp/helpers", "aiohttp/_http_parser", "aiohttp/http_parser",
                        "aiohttp/multipart", "aiohttp/payload", "aiohttp/formdata")),
    ("aiohttp server", ("aiohttp/web_", "aiohttp/http_writer", "aiohttp/base_protocol", "aiohttp/abc")),
    ("JSON (orjson)", ("orjson",)),
    ("logging", ("logging/",)),
    ("event loop (uvloop's C code: socket I/O, callbacks)", ("aiohttp/web.py", "asyncio/runners", "uvloop")),
    ("asyncio (Python)", ("asyncio/",)),
    ("pydantic", ("pydantic",)),
    ("yarl / multidict", ("yarl", "multidict")),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::(?P<line>\d+))?\)$")


def parse_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) format: 'frame;frame;...;leaf count' per line."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


_ENTRY_FILES = ("tollway/cli.py", "tollway/gateway/command.py")  # always on the stack: say nothing


def _short(frame: str) -> str:
    """'function (path/inside/package.py)': samples of every line of a function are added up."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3.11/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


def _area(frames: list[str]) -> str:
    leaf = frames[-1]
    for name, markers in AREAS:
        if any(m in leaf for m in markers):
            return name
    # a C extension or builtin leaf: charge it to the nearest Python frame's area
    for frame in reversed(frames[:-1]):
        for name, markers in AREAS:
            if any(m in frame for m in markers):
                return name
    return "other"


def summarise(stacks: list[tuple[list[str], int]], top: int = 25) -> list[str]:
    total = sum(count for _, count in stacks) or 1
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, count in stacks:
        areas[_area(frames)] += count
        leaves[_short(frames[-1])] += count
        for name in {_short(f) for f in frames if "tollway/" in f and not any(e in f for e in _ENTRY_FILES)}:
            ours[name] += count
    lines = [f"{total:,} samples.", "", "| area (leaf frame) | share |", "| --- | ---: |"]
    lines += [f"| {name} | {count / total:.1%} |" for name, count in areas.most_common()]
    lines += ["", "| leaf function (self time) | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {count / total:.1%} |" for name, count in leaves.most_common(top)]
    lines += ["", "| tollway function (including callees) | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {count / total:.1%} |" for name, count in ours.most_common(top)]
    return lines


def _py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def profile(wrk: str, gateway: Target, out: Path, seconds: float, connections: int, load_core: int | None) -> list[str]:
    """Profile non-streamed and streamed load; write summaries to out/profile-<mode>.md, return both."""
    spy = _py_spy()
    if spy is None:
        return ["py-spy is not installed (pip install py-spy): no profile taken."]
    lines: list[str] = []
    for mode, stream in (("non-streaming", False), ("streaming", True)):
        raw = out / "work" / f"profile-{mode}.txt"
        cmd = pinned(load_core, [spy, "record", "--pid", str(gateway.proc.pid), "--duration", str(int(seconds)),
                                 "--rate", "250", "--gil", "--format", "raw", "--output", str(raw)])
        spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        result = run_wrk(wrk, gateway.chat_url, chat_body("chat", stream), gateway.api_key, seconds, connections,
                         load_core)
        _, err = spy_proc.communicate(timeout=seconds + 60)
        if spy_proc.returncode != 0 or not raw.exists():
            lines += [f"### {mode}", "", f"py-spy failed: {err.strip()[-500:]}", ""]
            continue
        summary = [f"### {mode} ({result.rps:,.0f} req/s while sampled)", "", *summarise(parse_raw(raw))]
        (out / f"profile-{mode}.md").write_text("\n".join(summary) + "\n")
        lines += [*summary, ""]
    return lines

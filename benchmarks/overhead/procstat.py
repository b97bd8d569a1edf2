"""CPU time and resident memory of a process and all its descendants, read from /proc.

A gateway may fork workers (LiteLLM's proxy runs uvicorn under a parent; `tollway serve --workers N`
will too), so every number is summed over the whole tree: what the machine pays, not what one pid pays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class TreeSample:
    cpu_s: float      # user + system CPU seconds, summed over live processes of the tree
    rss_bytes: int    # resident set size, summed
    processes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing ')'
    return raw[raw.rindex(")") + 2:].split()


def descendants(root: int) -> list[int]:
    """root and every process below it, found through each process's parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def sample(root: int) -> TreeSample:
    """CPU seconds (utime + stime, fields 14 and 15 of /proc/PID/stat) and RSS (field 24) of the tree."""
    cpu_ticks = rss_pages = count = 0
    for pid in descendants(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # after the ')' split, field N of proc(5) is at index N - 3
        cpu_ticks += int(fields[11]) + int(fields[12])
        rss_pages += int(fields[21])
        count += 1
    return TreeSample(cpu_ticks / CLOCK_TICKS, rss_pages * PAGE_BYTES, count)

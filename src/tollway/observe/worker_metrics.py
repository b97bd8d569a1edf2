"""/metrics under `serve --workers N`: each worker's figures in a file, every scrape adds them all up.

The kernel hands each scrape to whichever worker accepts it, so figures kept only in process would read
as counter resets. prometheus-client's multiprocess mode does not fit tollway's figures: they are built
by custom collectors from exact sums (cost is a Decimal, rendered once), and its mmap values are floats
incremented per event. So each worker writes its own snapshot: `counters-<pid>.json` (ints and exact
decimal text) after each fold of rows and at each scrape, and `gauges-<pid>.json` beside it. A scrape
sums every counters file (a worker that exited keeps counting, as Prometheus expects of a counter) and
reads the gauges files of the workers still running (the parent removes a worker's gauges file when it
exits, as prometheus-client's `mark_process_dead` does). Another worker's figures are as fresh as its
last fold (`observe.drain_every_s`).

The parent makes a fresh directory per run before forking and names it in WORKER_METRICS_DIR_ENV.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import orjson

log = logging.getLogger("tollway.observe")
WORKER_METRICS_DIR_ENV = "TOLLWAY_WORKER_METRICS_DIR"


class Snapshotting(Protocol):
    def snapshot(self) -> dict: ...

    def gauge_snapshot(self) -> dict: ...


def fleet_dir() -> Path | None:
    """The directory the `--workers` parent named for this run, or None in a single process."""
    value = os.environ.get(WORKER_METRICS_DIR_ENV)
    return Path(value) if value else None


def make_fleet_dir() -> Path:
    """A fresh directory for one run's worker files, named in the environment the workers inherit."""
    path = Path(tempfile.mkdtemp(prefix="tollway-metrics-"))
    os.environ[WORKER_METRICS_DIR_ENV] = str(path)
    return path


def mark_worker_dead(directory: Path, pid: int) -> None:
    """A worker exited: its gauges no longer describe anything; its counters still count."""
    (directory / f"gauges-{pid}.json").unlink(missing_ok=True)


def remove_fleet_dir(directory: Path) -> None:
    os.environ.pop(WORKER_METRICS_DIR_ENV, None)
    shutil.rmtree(directory, ignore_errors=True)


class WorkerFiles:
    """This worker's two files in the run's directory, and the reading of everyone's."""

    def __init__(self, directory: Path) -> None:
        """Made before the parent forks: each file is named by the pid of the worker writing it."""
        self.directory = directory

    def write(self, metrics: Snapshotting) -> None:
        """Replace this worker's files atomically (a reader sees the old or the new, never half)."""
        pid = os.getpid()
        try:
            self._replace(f"counters-{pid}.json", metrics.snapshot())
            self._replace(f"gauges-{pid}.json", metrics.gauge_snapshot())
        except OSError as exc:
            log.warning("cannot write this worker's figures to %s: %s", self.directory, exc.strerror or exc)

    def counter_snapshots(self) -> list[dict]:
        return [snapshot for _, snapshot in self._read("counters-")]

    def gauge_snapshots(self) -> list[tuple[str, dict]]:
        """(worker pid, gauges) of each worker still running."""
        return self._read("gauges-")

    def _replace(self, name: str, content: dict) -> None:
        final = self.directory / name
        temporary = final.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(content))
        os.replace(temporary, final)

    def _read(self, prefix: str) -> list[tuple[str, dict]]:
        out = []
        for path in sorted(self.directory.glob(f"{prefix}*.json")):
            try:
                out.append((path.stem.removeprefix(prefix), orjson.loads(path.read_bytes())))
            except (OSError, orjson.JSONDecodeError):  # removed between listing and reading: not running
                continue
        return out

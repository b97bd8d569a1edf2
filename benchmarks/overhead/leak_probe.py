"""What a running gateway keeps: `tollway serve` in-process under tracemalloc, with a report on demand.

The soak shows *that* RSS grows; this shows *what* grows. The first SIGUSR1 starts tracing; each SIGUSR1
collects garbage, then appends to the report file the allocation sites that grew most since the previous
one (with their tracebacks) and the object types whose live count grew. Send one after a warm-up, load
for a while, send another.

    python leak_probe.py REPORT.txt serve --config tollway.yaml --port 8000 --ledger /tmp/l.db &
    kill -USR1 $!; wrk ...; kill -USR1 $!; cat REPORT.txt

`run.py --leak-probe` does exactly this with the benchmark's own config and load.
"""

from __future__ import annotations

import gc
import signal
import sys
import tracemalloc
from collections import Counter
from pathlib import Path


class GrowthReport:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshot: tracemalloc.Snapshot | None = None
        self.types: Counter[str] = Counter()
        self.dumps = 0

    def dump(self, signum: int = 0, frame: object = None) -> None:
        if not tracemalloc.is_tracing():  # from the first dump on: start-up and warm-up run at full speed
            tracemalloc.start(8)
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        types = Counter(type(obj).__qualname__ for obj in gc.get_objects())
        self.dumps += 1
        traced_mib = sum(s.size for s in snapshot.statistics("filename")) / 2**20
        lines = [f"=== dump {self.dumps}: {traced_mib:.1f} MiB traced, {sum(types.values()):,} gc-tracked objects"]
        if self.snapshot is not None:
            lines.append("--- allocation sites that grew most since the previous dump")
            for stat in snapshot.compare_to(self.snapshot, "traceback")[:12]:
                if stat.size_diff <= 0:
                    break
                lines.append(f"+{stat.size_diff / 1024:,.0f} KiB in +{stat.count_diff:,} blocks")
                lines += ["    " + line for line in stat.traceback.format(limit=6, most_recent_first=True)[:12]]
            lines.append("--- object types whose live count grew most")
            lines += [f"+{count:,} {name}" for name, count in (types - self.types).most_common(15)]
        with self.path.open("a") as out:
            out.write("\n".join(lines) + "\n")
        self.snapshot, self.types = snapshot, types


def main() -> None:
    report = GrowthReport(Path(sys.argv[1]))
    signal.signal(signal.SIGUSR1, report.dump)
    from tollway.cli import main as tollway_main

    sys.argv = ["tollway", *sys.argv[2:]]
    tollway_main()


if __name__ == "__main__":
    main()

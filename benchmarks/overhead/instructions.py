"""Instructions per request: tollway against the bare proxy (and other revisions), counted, not timed.

CPU seconds move with the machine: a neighbour's burst, frequency scaling, a shared core. The number of
instructions a gateway process executes for a request barely does, so a change of one or two percent
can be seen on a busy machine, where a timed run's noise is ten times that. Each target runs under
valgrind's callgrind with instrumentation off until it is warm; then one keep-alive connection sends N
requests one after another, the count is dumped, and an idle window of the same length is counted and
subtracted (timers, key refreshes and the ledger's flush run by the clock, not by the request, and run
more often per request under valgrind's slowdown than at full load). All threads of the process count.

It complements run.py, it does not replace it: instructions are not seconds (system calls, cache misses
and the kernel are not in them), so the headline figures stay run.py's. Use this one to see whether a
change made the request path cheaper or dearer, and by how much. Results: docs/performance.md.

    .venv/bin/python benchmarks/overhead/instructions.py                      # working tree vs bare proxy
    .venv/bin/python benchmarks/overhead/instructions.py --rev HEAD~5 --rev HEAD --requests 400
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import targets
import tollway_config
import wrk

BARE = "bare aiohttp proxy"
PYTHONHASHSEED = "0"  # dict and set layouts the same in every run


@dataclass(frozen=True)
class Count:
    target: str
    mode: str
    per_request: float
    idle_share: float


def _callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--instr-atstart=no",
            "--collect-jumps=no", "--dump-instr=no", "--separate-threads=yes"]


def _export(rev: str, work: Path) -> Path:
    """`git archive` of one revision's src/, compiled once (so no target spends instructions on it)."""
    subprocess.run(f"git -C {targets.REPO} archive {rev} src | tar -x -C {work}", shell=True, check=True)
    subprocess.run([targets.PYTHON, "-m", "compileall", "-q", str(work / "src")], check=False)
    return work / "src"


def _send(base: str, key: str, body: str, n: int) -> None:
    """N requests on one keep-alive connection, each read to its end before the next is sent."""
    host, port = base.split("//")[1].split(":")
    data = body.encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port))) as sock:
        for _ in range(n):
            sock.sendall(head + data)
            _read_answer(sock)


def _read_answer(sock: socket.socket) -> None:
    buffer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the target closed the connection")
        buffer += data
        head, found, rest = buffer.partition(b"\r\n\r\n")
        if not found:
            continue
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the target answered {head[:200]!r}")
        if b"chunked" in head.lower():
            if rest.endswith(b"0\r\n\r\n"):
                return
        else:
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length and len(rest) >= int(length.group(1)):
                return


def _total(out: Path, pid: int) -> int:
    """The instructions of the last dump, summed over the process's threads."""
    dumps: dict[int, list[Path]] = {}
    for path in out.parent.glob(f"{out.name}.{pid}.*"):
        match = re.search(r"\.(\d+)-\d+$", path.name)
        if match:
            dumps.setdefault(int(match.group(1)), []).append(path)
    total = 0
    for path in dumps[max(dumps)]:
        for line in path.read_text().splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def measure(name: str, proc: subprocess.Popen, out: Path, base: str, key: str, body: str, mode: str,
            requests: int) -> Count:
    pid = str(proc.pid)
    _send(base, key, body, 100)
    _control("-i", "on", pid)
    _send(base, key, body, 50)  # the instrumented code's own warm-up
    time.sleep(1.0)
    _control("-z", pid)
    started = time.monotonic()
    _send(base, key, body, requests)
    time.sleep(1.0)  # the ledger's flush of the last rows
    _control("-d", pid)
    busy_s = time.monotonic() - started
    busy = _total(out, proc.pid)
    _control("-z", pid)
    started = time.monotonic()
    time.sleep(busy_s)
    _control("-d", pid)
    idle = _total(out, proc.pid) * busy_s / (time.monotonic() - started)
    return Count(name, mode, (busy - idle) / requests, idle / busy if busy else 0.0)


def run_target(name: str, rev: str | None, mode: str, requests: int, work: Path) -> Count:
    work.mkdir(parents=True)
    upstream = targets.start_upstream(work, None)
    out = work / "callgrind.out"
    env = {"PYTHONHASHSEED": PYTHONHASHSEED}
    try:
        if name == BARE:
            port = targets.free_port()
            cmd = [*_callgrind(out), targets.PYTHON, str(targets.HERE / "bare_proxy.py"), "--port", str(port),
                   "--upstream", upstream.base]
            proc, _ = targets.spawn(name, cmd, f"http://127.0.0.1:{port}/healthz", work / "bare.log", env=env,
                                    timeout=900)
            base, key = f"http://127.0.0.1:{port}", "sk-bench-client"
        else:
            source = _export(rev, work) if rev else None
            config = tollway_config.write_config(upstream.base, targets.UPSTREAM_KEY, work, source)
            launcher = [*_callgrind(out), targets.PYTHON, "-m", "tollway.cli"]
            original = targets.spawn
            targets.spawn = lambda *a, **k: original(*a, **{**k, "timeout": 900})  # valgrind starts slowly
            try:
                gateway = targets.start_tollway(config.path, {**config.env, **env}, work, None,
                                                tollway_config.CLIENT_KEY, source, launcher)
            finally:
                targets.spawn = original
            proc, base = gateway.proc, gateway.base
            secret, _ = tollway_config.create_virtual_key(base)
            key = secret or tollway_config.CLIENT_KEY
        assert proc is not None
        try:
            return measure(name, proc, out, base, key, wrk.chat_body("chat", mode == "stream"), mode, requests)
        finally:
            targets.stop(proc)
    finally:
        targets.stop(upstream.proc)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", action="append", default=[],
                        help="a git revision of tollway to count (repeatable); default: the working tree")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--mode", choices=("plain", "stream", "both"), default="both")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare proxy")
    parser.add_argument("--parallel", type=int, default=4, help="targets counted at once")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)
    if not shutil.which("valgrind"):
        print("needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    modes = ("plain", "stream") if args.mode == "both" else (args.mode,)
    revs: list[str | None] = list(args.rev) or [None]
    jobs = [(f"tollway {rev or 'working tree'}", rev) for rev in revs]
    if not args.no_bare:
        jobs.insert(0, (BARE, None))
    root = Path(tempfile.mkdtemp(prefix="tollway-instructions-"))
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        futures = {(name, mode): pool.submit(run_target, name, rev, mode, args.requests, root / f"{i}-{mode}")
                   for i, (name, rev) in enumerate(jobs) for mode in modes}
        counts = {key: future.result() for key, future in futures.items()}
    print(f"instructions per request ({args.requests} requests, one keep-alive connection, idle subtracted)")
    for mode in modes:
        bare = counts.get((BARE, mode))
        for name, _ in jobs:
            count = counts[(name, mode)]
            ratio = f"  {count.per_request / bare.per_request:.3f}x the bare proxy" if bare and name != BARE else ""
            print(f"  {mode:6s} {name:32s} {count.per_request:12,.0f}{ratio}   (idle share {count.idle_share:.0%})")
    if args.json:
        args.json.write_text(json.dumps([c.__dict__ for c in counts.values()], indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.chdir(targets.HERE)
    sys.exit(main(sys.argv[1:]))

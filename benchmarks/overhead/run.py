"""tollway's hot-path overhead benchmark: one command, every target side by side, one report.

Starts a fake upstream (raw asyncio + httptools, never the bottleneck), then in turn: the upstream itself
("direct", the ceiling), a bare aiohttp pass-through proxy (the floor any Python proxy pays), tollway with
every feature it supports switched on, and LiteLLM's proxy from its own venv. Each gets the same closed-loop
wrk runs, open-loop runs at fixed rates, CPU and memory readings; the gateway is pinned to core 0, the load
and upstream to core 1.

    .venv/bin/python benchmarks/overhead/run.py            # full: about 15 minutes, writes results/latest/
    .venv/bin/python benchmarks/overhead/run.py --quick    # CI smoke: seconds, no LiteLLM, no alternatives
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import measure
import report
import targets
import tollway_config
import translation_rows
from measure import MODES, TargetResult
from tollway_config import write_config
from wrk import ensure_wrk

STREAM_PACING = (20.0, 1.0)   # open-loop streams: first token after 20 ms, then one token per ms
PLAIN_PACING = (0.0, 0.0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="tollway hot-path overhead benchmark")
    parser.add_argument("--quick", action="store_true", help="CI smoke: 1 s runs, no LiteLLM, no alternatives")
    parser.add_argument("--out", type=Path, default=targets.HERE / "results" / "latest", help="report directory")
    parser.add_argument("--seconds", type=float, help="length of each closed-loop run (default 10, quick 1)")
    parser.add_argument("--open-seconds", type=float, help="measured length of each open-loop run (default 10, quick 1)")
    parser.add_argument("--rate", type=float, help="open-loop requests/s (default 200, quick 50)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (closed loop)")
    parser.add_argument("--rounds", type=int, help="closed-loop rounds over all targets; medians reported (default 3, quick 1)")
    parser.add_argument("--soak", type=int, help="requests tollway answers in the soak (default 200000, quick 2000)")
    parser.add_argument("--tollway-rev", help="benchmark this git revision of tollway (exported with git archive) "
                                              "instead of the installed working tree, e.g. HEAD")
    parser.add_argument("--leak-probe", action="store_true",
                        help="diagnose memory growth: tollway under tracemalloc (slow: its CPU numbers are not "
                             "comparable), a report of what grew over the soak")
    parser.add_argument("--gateway-cores", type=int, default=1, help="cores the gateways are pinned to (the load "
                                                                     "takes the next one)")
    parser.add_argument("--tollway-workers", type=int, default=1, help="tollway serve --workers N")
    parser.add_argument("--redis", action="store_true", help="tollway's limits and budgets in a local redis-server "
                                                              "(always with --tollway-workers above 1)")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also py-spy tollway under load (profile.py)")
    parser.add_argument("--translation", action=argparse.BooleanOptionalAction, default=True,
                        help="tollway's translation rows (/v1/messages, /v1/responses, an Anthropic upstream) beside "
                             "its chat path in the same rounds (translation_rows.py)")
    parser.add_argument("--alternatives", action=argparse.BooleanOptionalAction, default=None,
                        help="micro-benchmark server/client/JSON alternatives (default: on in full runs)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.seconds = args.seconds or (1.0 if quick else 5.0)
    args.rounds = args.rounds or (1 if quick else 3)
    args.open_seconds = args.open_seconds or (0.5 if quick else 10.0)
    args.rate = args.rate or (50.0 if quick else 200.0)
    args.soak = args.soak if args.soak is not None else (500 if quick else 200_000)
    args.skip_litellm = args.skip_litellm or quick
    args.alternatives = (not quick) if args.alternatives is None else args.alternatives
    args.redis = args.redis or args.tollway_workers > 1
    return args


def cores(gateway_cores: int) -> tuple[str | None, int | None, str]:
    """(gateway cores as a taskset list, load core, note); this process moves to the load core so it never
    disturbs the gateway."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        if gateway_cores > 1:
            raise SystemExit(f"--gateway-cores {gateway_cores}: this machine has {len(available)} core")
        return None, None, "fewer than 2 cores: nothing pinned, gateway and load share the CPU"
    if gateway_cores >= len(available):
        raise SystemExit(f"--gateway-cores {gateway_cores} leaves no core for the load: this machine has "
                         f"{len(available)} (the load needs one of its own)")
    gateway, load_core = ",".join(str(c) for c in available[:gateway_cores]), available[gateway_cores]
    os.sched_setaffinity(0, {load_core})
    return gateway, load_core, f"gateway on core(s) {gateway}; upstream, load and harness on core {load_core}"


def start_all(args, upstream: targets.Target, work: Path, gateway_core: str | None,
              tollway_src: Path | None, redis: targets.Target | None) -> tuple[dict, dict]:
    """Start every target up front (each measured for time to ready and idle RSS before any load)."""
    live = {report.DIRECT: targets.Target(report.DIRECT, upstream.base)}
    results = {report.DIRECT: TargetResult(report.DIRECT, None)}
    starters = []
    if not args.skip_bare:
        starters.append((report.BARE, lambda: targets.start_bare_proxy(upstream, work, gateway_core)))
    launcher = [targets.PYTHON, str(targets.HERE / "leak_probe.py"), str(work / "leak-report.txt")] \
        if args.leak_probe else None
    extra = ("--workers", str(args.tollway_workers), *(("--redis-url", redis.base) if redis else ()))
    starters.append((report.TOLLWAY, lambda: _start_tollway(upstream, work, gateway_core, tollway_src, launcher,
                                                            extra)))
    if not args.skip_litellm:
        starters.append((report.LITELLM, lambda: _start_litellm(upstream, work, gateway_core)))
    for name, starter in starters:
        print(f"starting {name} ...", flush=True)
        target = starter()
        if isinstance(target, str):
            results[report.TOLLWAY].notes.append(target)
            continue
        live[name] = target
        time.sleep(0.5)
        results[name] = TargetResult(name, target.ready_s, round(measure.rss_mib(target), 1), notes=list(target.notes),
                                     extra=dict(target.extra))
    return live, results


def _start_tollway(upstream: targets.Target, work: Path, gateway_core: str | None, tollway_src: Path | None,
                   launcher: list[str] | None, extra_args: tuple[str, ...]) -> targets.Target:
    config = write_config(upstream.base, targets.UPSTREAM_KEY, work, tollway_src)
    gateway = targets.start_tollway(config.path, config.env, work, gateway_core, tollway_config.CLIENT_KEY,
                                    tollway_src, launcher, extra_args)
    gateway.notes += [f"feature {m}" for m in config.features_missing]
    secret, why_not = tollway_config.create_virtual_key(gateway.base)
    if secret:
        gateway.api_key = secret
        config.features_on.append("virtual key (team, RPM/TPM limits, daily + monthly budget) on every request")
    else:
        gateway.notes.append(f"virtual key: not used, the static client key was ({why_not})")
    gateway.extra["features_on"] = config.features_on
    gateway.extra["translation"] = tollway_config.TRANSLATION_PROBE.name in config.features_on
    return gateway


def _start_litellm(upstream: targets.Target, work: Path, gateway_core: str | None) -> targets.Target | str:
    binary = targets.ensure_litellm_venv(work / "litellm-install.log")
    if binary is None:
        return f"LiteLLM skipped: installing {targets.LITELLM_SPEC} failed (see {work / 'litellm-install.log'})"
    proxy = targets.start_litellm(binary, upstream, work, gateway_core)
    proxy.notes.append(f"litellm {proxy.extra['version']}, 1 worker, no database, no callbacks")
    return proxy


def closed_rounds(args, wrk: str, live: dict, results: dict, upstream: targets.Target, load_core: int | None) -> None:
    """Round-robin over targets and modes, `rounds` times: a neighbour's burst of CPU hits every target alike."""
    if not args.quick:
        for target in live.values():  # warm connection pools and caches before anything is measured
            measure.closed_loop(wrk, target, upstream, MODES[0], 2, args.connections, load_core)
    for round_number in range(args.rounds):
        print(f"closed loop, round {round_number + 1} of {args.rounds} ...", flush=True)
        for name, target in live.items():
            runs = [(mode, None, None, mode) for mode in MODES]
            if name == report.TOLLWAY and args.translation and target.extra.get("translation"):
                # the chat modes and the translation rows in an order turned by one each round, each run after
                # a pause: the ledger writer and the observer finish the previous run's rows outside the
                # measured window, and no row is always the one measured first or after another
                runs += [(mode, target.base + row.path, row.body(mode == "streaming"), translation_rows.key(row, mode))
                         for row in translation_rows.ROWS for mode in MODES]
                turn = round_number * len(runs) // max(1, args.rounds)
                runs = runs[turn:] + runs[:turn]
            for mode, url, body, key in runs:
                if len(runs) > len(MODES):
                    time.sleep(1.0)
                run = measure.closed_loop(wrk, target, upstream, mode, args.seconds, args.connections, load_core,
                                          url, body)
                results[name].closed_rounds.setdefault(key, []).append(run)
    for result in results.values():
        result.closed = {mode: measure.median_closed(runs) for mode, runs in result.closed_rounds.items()}


def open_loops(args, live: dict, results: dict, upstream: targets.Target, load_core: int | None) -> None:
    print("open loop ...", flush=True)
    for name, target in live.items():
        for mode in MODES:
            pacing = STREAM_PACING if mode == "streaming" else PLAIN_PACING
            warmup = 0.3 if args.quick else 1.0
            results[name].open[mode] = measure.open_loop(target, upstream, mode, args.rate, args.open_seconds,
                                                         warmup, load_core, pacing)


def finish_tollway(args, wrk: str | None, gateway: targets.Target, result: TargetResult, load_core: int | None,
                   extras: dict) -> None:
    """Profile and soak tollway (after every other measurement), stop it, and check its ledger."""
    if args.profile and wrk:
        import profile_gateway

        print("profiling tollway ...", flush=True)
        extras["Profile of tollway under load (py-spy)"] = profile_gateway.profile(
            wrk, gateway, args.out, 5 if args.quick else 15, args.connections, load_core)
    if wrk and args.soak:
        print(f"soak: {args.soak:,} requests through tollway ...", flush=True)
        leak_report = args.out / "work" / "leak-report.txt"
        if args.leak_probe:
            _leak_dump(gateway, leak_report, 1)
        chunk_s = 1 if args.quick and not args.leak_probe else 10  # traced, tollway is slow: longer chunks
        result.soak = measure.soak(wrk, gateway, args.soak, chunk_s, args.connections, load_core)
        if args.leak_probe:
            _leak_dump(gateway, leak_report, 2)
            extras["What grew in tollway over the soak (leak_probe.py, tracemalloc)"] = [
                "```", *leak_report.read_text().splitlines(), "```"]
    result.extra["exit_code"] = targets.stop(gateway.proc)
    result.extra["ledger_rows"] = rows = _ledger_rows(gateway.extra["ledger"])
    answered = sum(c.requests - c.errors for c in result.closed.values()) + sum(o.measured for o in result.open.values())
    result.notes.append(f"ledger: {rows:,} rows written by shutdown (measured runs alone answered {answered:,}; "
                        f"warm-up, soak and requests cut off by wrk add rows too)")


def _leak_dump(gateway: targets.Target, report_path: Path, number: int, timeout: float = 120.0) -> None:
    """Ask leak_probe.py for dump `number` and wait until it is written."""
    os.kill(gateway.proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if report_path.exists() and report_path.read_text().count("=== dump") >= number:
            return
        time.sleep(0.2)
    raise TimeoutError(f"leak_probe.py wrote no dump {number} to {report_path} in {timeout:g}s")


def export_revision(rev: str, work: Path) -> tuple[Path, str]:
    """`git archive` one revision's src/ into the work directory; returns (its src dir, short commit)."""
    commit = subprocess.run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], check=True, capture_output=True,
                            text=True, cwd=targets.REPO).stdout.strip()
    dest = work / f"tollway-{commit}"
    if not (dest / "src" / "tollway").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "src"], check=True, capture_output=True, cwd=targets.REPO)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src", commit


def _ledger_rows(path: Path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM requests").fetchone()[0]
    finally:
        conn.close()


def _meta(args, argv: list[str], pin_note: str, loads: tuple, commit: str | None) -> dict:
    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], check=False, capture_output=True, text=True, cwd=targets.REPO)
        return out.stdout.strip()

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "benchmarks/overhead/run.py", *argv]),
        "tollway commit": commit or (git("rev-parse", "--short", "HEAD")
                                     + (" + uncommitted changes in src/" if git("status", "--porcelain", "src") else "")),
        "machine": f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}",
        "python": sys.version.split()[0],
        "pinning": pin_note,
        "tollway serve": f"--workers {args.tollway_workers}" + (", counters in a local redis-server" if args.redis
                                                                 else ", counters in process"),
        "load average before / after": f"{loads[0]:.2f} / {loads[1]:.2f}",
        "closed loop": f"wrk -t1 -c{args.connections}, {args.seconds:g} s per run, {args.rounds} rounds (medians), 64-token answers",
        "open loop": f"{args.rate:g} requests/s for {args.open_seconds:g} s; streams paced at first token "
                     f"{STREAM_PACING[0]:g} ms then {STREAM_PACING[1]:g} ms/token, plain answers instant",
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    gateway_core, load_core, pin_note = cores(args.gateway_cores)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / "leak-report.txt").unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    wrk = ensure_wrk()
    upstream = targets.start_upstream(work, load_core)
    extras: dict[str, list[str]] = {}
    live: dict[str, targets.Target] = {}
    tollway_src, commit = export_revision(args.tollway_rev, work) if args.tollway_rev else (None, None)
    redis = targets.start_redis(work, load_core) if args.redis else None
    redis_cpu0 = measure.procstat.sample(redis.proc.pid).cpu_s if redis else 0.0
    try:
        live, results = start_all(args, upstream, work, gateway_core, tollway_src, redis)
        if wrk is None:
            results[report.DIRECT].notes.append("closed loop skipped: wrk is missing and could not be installed")
        else:
            closed_rounds(args, wrk, live, results, upstream, load_core)
        open_loops(args, live, results, upstream, load_core)
        for name, target in live.items():
            if target.proc:
                results[name].rss_after_mib = round(measure.rss_mib(target), 1)
                results[name].processes = measure.procstat.sample(target.proc.pid).processes
        for name, target in live.items():  # nothing else may run on the gateway core from here on
            if name != report.TOLLWAY:
                targets.stop(target.proc)
        finish_tollway(args, wrk, live[report.TOLLWAY], results[report.TOLLWAY], load_core, extras)
        if redis:
            redis_cpu = measure.procstat.sample(redis.proc.pid).cpu_s - redis_cpu0
            rows = results[report.TOLLWAY].extra["ledger_rows"]
            results[report.TOLLWAY].notes.append(
                f"redis-server (on the load core) spent {redis_cpu:.2f} CPU s over the run: "
                f"{redis_cpu * 1000 / max(1, rows):.4f} ms per ledger row, not included in tollway's CPU")
    finally:
        for target in live.values():
            targets.stop(target.proc)
        targets.stop(upstream.proc)
        if redis:
            targets.stop(redis.proc)
    if args.alternatives:
        print("alternatives (servers, clients, JSON) ...", flush=True)
        import alternatives

        extras["Hot-path library alternatives"] = alternatives.run_all(work, gateway_core, load_core, wrk,
                                                                       args.seconds, args.rounds, args.quick)
    meta = _meta(args, argv, pin_note, (load_before, os.getloadavg()[0]), commit)
    path = report.write(args.out, meta, results, extras)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Compare `tollway bench` with GuideLLM on the same emulator target, by hand (not in CI).

    .venv/bin/python benchmarks/guidellm/compare.py            # from the repository root

What it does:
1. Creates benchmarks/guidellm/.venv with GuideLLM from PyPI (pinned), and an offline tokenizer for it.
2. Starts `tollway emulate` with three model profiles whose true TTFT and per-token delay are known.
3. Runs both tools with the same concurrency, request count and input/output lengths against each profile
   (the emulator is reset before every run).
4. Writes benchmarks/guidellm/RESULTS.md: the configured truth against each tool's figures.

Why: a benchmark's figures are only trustworthy if they agree with ground truth and the differences
with other tools are explained. The emulator gives ground truth; GuideLLM is a well-known peer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GUIDELLM_VERSION = "0.8.1"
INPUT_TOKENS = 128
OUTPUT_TOKENS = 64


@dataclass(frozen=True)
class Scenario:
    name: str
    profile: dict
    concurrency: int
    requests: int
    truth: dict[str, float]
    note: str


def _truth(ttft_ms: float, tpot_ms: float, per_chunk: int) -> dict[str, float]:
    """What an exact client must see: the emulator sends token t at ttft + t * tpot, a chunk with its last token."""
    first = ttft_ms + (per_chunk - 1) * tpot_ms
    e2e = ttft_ms + (OUTPUT_TOKENS - 1) * tpot_ms
    return {"ttft_ms": first, "tpot_ms": (e2e - first) / (OUTPUT_TOKENS - 1), "itl_token_ms": tpot_ms,
            "e2e_ms": e2e, "output_tokens": OUTPUT_TOKENS}


SCENARIOS = (
    Scenario("paced", {"ttft_ms": 200, "tpot_ms": 20, "tokens_per_chunk": 1}, 4, 40, _truth(200, 20, 1),
             "one token per SSE event"),
    Scenario("chunky", {"ttft_ms": 200, "tpot_ms": 20, "tokens_per_chunk": 4}, 4, 40, _truth(200, 20, 4),
             "four tokens per SSE event"),
    Scenario("faulty", {"ttft_ms": 100, "tpot_ms": 10, "tokens_per_chunk": 1,
                        "faults": [{"kind": "rate_limit", "probability": 0.2, "retry_after_s": 1}]},
             4, 40, _truth(100, 10, 1), "20% of requests answered 429"),
)


def ensure_venv(venv: Path) -> Path:
    """GuideLLM in its own environment, so its dependencies never touch tollway's."""
    guidellm = venv / "bin" / "guidellm"
    if not guidellm.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"guidellm=={GUIDELLM_VERSION}"], check=True)
    return guidellm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(work: Path) -> tuple[subprocess.Popen, str]:
    import yaml

    models = {s.name: {**s.profile, "output_tokens": OUTPUT_TOKENS} for s in SCENARIOS}
    config = work / "emulator.yaml"
    config.write_text(yaml.safe_dump({"seed": 1, "models": models}))
    port = free_port()
    log = open(work / "emulator.log", "wb")  # noqa: SIM115  (stays open while the emulator runs)
    proc = subprocess.Popen([sys.executable, "-m", "tollway.cli", "emulate", "--port", str(port), "--config",
                             str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the emulator did not start; see {work / 'emulator.log'}")


def reset(url: str) -> None:
    request = urllib.request.Request(url + "/_emulator/reset", data=b'{"profiles": false}', method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def timed(cmd: list[str], log_path: Path) -> tuple[float, float]:
    """Run `cmd`; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed with {proc.returncode}; see {log_path}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_tollway(url: str, scenario: Scenario, work: Path) -> dict:
    out = work / f"tollway-{scenario.name}"
    cmd = [sys.executable, "-m", "tollway.cli", "bench", "--target", f"emulator={url}/v1", "--model", scenario.name,
           "--concurrency", str(scenario.concurrency), "--requests", str(scenario.requests), "--warmup", "0",
           "--input-tokens", str(INPUT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS), "--out", str(out),
           "--no-plots", "--no-live", "--timeout", "60s"]
    wall, cpu = timed(cmd, work / f"tollway-{scenario.name}.log")
    level = json.loads((out / "bench.json").read_text())["results"][0]
    lat = level["latency_ms"]
    return {
        "ttft_p50": lat["ttft"]["p50"], "ttft_p99": lat["ttft"]["p99"], "tpot_p50": lat["tpot"]["p50"],
        "itl_p50": lat["itl_token"]["p50"], "itl_chunk_p50": lat["itl_chunk"]["p50"], "e2e_p50": lat["e2e"]["p50"],
        "requests_per_s": level["throughput"]["requests_per_s"],
        "output_tokens_per_s": level["throughput"]["output_tokens_per_s"],
        "ok": level["ok_requests"], "failed": level["failed_requests"], "output_tokens": level["tokens"]["output_mean"],
        "goodput_share": level["goodput"]["share"], "wall_s": wall, "cpu_s": cpu,
    }


def run_guidellm(guidellm: Path, tokenizer: Path, url: str, scenario: Scenario, work: Path) -> dict:
    out = work / f"guidellm-{scenario.name}.json"
    cmd = [str(guidellm), "run",
           "--backend", f"kind=openai_http,target={url},model={scenario.name},validate_backend=false",
           "--profile", f"kind=concurrent,streams={scenario.concurrency}",
           "--data", f"kind=synthetic_text,prompt_tokens={INPUT_TOKENS},output_tokens={OUTPUT_TOKENS}",
           "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
           "--constraint", f"kind=max_requests,count={scenario.requests}",
           "--output", f"kind=json,path={out}", "--disable-progress"]
    wall, cpu = timed(cmd, work / f"guidellm-{scenario.name}.log")
    metrics = json.loads(out.read_text())["benchmarks"][0]["metrics"]

    def stat(name: str, key: str = "median", scale: float = 1.0) -> float | None:
        values = metrics[name]["successful"]
        value = values["percentiles"][key] if key.startswith("p") else values.get(key)
        return None if value is None else value * scale

    totals = metrics["request_totals"]
    return {
        "ttft_p50": stat("time_to_first_token_ms"), "ttft_p99": stat("time_to_first_token_ms", "p99"),
        "tpot_p50": stat("time_per_output_token_ms"), "itl_p50": stat("inter_token_latency_ms"),
        "itl_chunk_p50": None, "e2e_p50": stat("request_latency", scale=1000.0),
        "requests_per_s": stat("requests_per_second", "mean"),
        "output_tokens_per_s": stat("output_tokens_per_second", "mean"),
        "ok": totals["successful"], "failed": totals["errored"] + totals["incomplete"],
        "output_tokens": stat("output_token_count", "mean"), "goodput_share": None, "wall_s": wall, "cpu_s": cpu,
    }


ROWS = (("TTFT p50 (ms)", "ttft_p50", "ttft_ms"), ("TTFT p99 (ms)", "ttft_p99", None),
        ("TPOT p50 (ms)", "tpot_p50", "tpot_ms"), ("ITL per token p50 (ms)", "itl_p50", "itl_token_ms"),
        ("ITL per chunk p50 (ms)", "itl_chunk_p50", None), ("E2E p50 (ms)", "e2e_p50", "e2e_ms"),
        ("output tokens per request", "output_tokens", "output_tokens"), ("requests/s", "requests_per_s", None),
        ("output tokens/s", "output_tokens_per_s", None), ("successful requests", "ok", None),
        ("failed requests", "failed", None), ("goodput share (no SLO: success rate)", "goodput_share", None),
        ("wall time of the run (s)", "wall_s", None), ("client CPU time (s)", "cpu_s", None))


def _cell(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def markdown(results: list[tuple[Scenario, dict, dict]]) -> str:
    lines = [f"# tollway bench vs GuideLLM {GUIDELLM_VERSION} on the emulator", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on this machine ({os.cpu_count()} cores), "
             f"by `benchmarks/guidellm/compare.py`. Each run: closed loop, {INPUT_TOKENS} input and "
             f"{OUTPUT_TOKENS} output tokens per request, no warm-up. 'truth' is what the emulator was configured "
             "to do (token t leaves at ttft + t x tpot; a chunk leaves with its last token).", ""]
    for scenario, ours, theirs in results:
        lines += [f"## {scenario.name}: {scenario.note}", "",
                  f"Profile `{json.dumps(scenario.profile)}`, concurrency {scenario.concurrency}, "
                  f"{scenario.requests} requests.", "", "| metric | truth | tollway bench | GuideLLM |",
                  "| --- | ---: | ---: | ---: |"]
        for label, key, truth_key in ROWS:
            truth = _cell(scenario.truth.get(truth_key)) if truth_key else ""
            lines.append(f"| {label} | {truth} | {_cell(ours[key])} | {_cell(theirs[key])} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=HERE / ".venv")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    guidellm = ensure_venv(args.venv)
    tokenizer = args.work / "tokenizer"
    subprocess.run([str(args.venv / "bin" / "python"), str(HERE / "make_tokenizer.py"), str(tokenizer)], check=True)
    proc, url = start_emulator(args.work)
    results = []
    try:
        for scenario in SCENARIOS:
            reset(url)
            ours = run_tollway(url, scenario, args.work)
            reset(url)
            theirs = run_guidellm(guidellm, tokenizer, url, scenario, args.work)
            results.append((scenario, ours, theirs))
            print(f"{scenario.name}: tollway {ours}\n{scenario.name}: guidellm {theirs}", flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    existing = args.results.read_text() if args.results.exists() else ""
    marker = "## What the differences mean"
    analysis = existing[existing.index(marker):] if marker in existing else ""
    args.results.write_text(markdown(results) + ("\n" + analysis if analysis else ""))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()

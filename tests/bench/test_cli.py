"""`tollway bench` as a user runs it: a real CLI process against real emulator processes."""

from __future__ import annotations

import csv
import html
import os
import re
import subprocess

import orjson
import pytest
from click.testing import CliRunner

from tests.processes import TOLLWAY
from tollway.bench.command import bench
from tollway.bench.report_json import SCHEMA, BenchFileError, read_capacity


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "bench", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.mark.slow
def test_two_targets_side_by_side_with_every_output(emulator_factory, tmp_path):
    api = emulator_factory(ttft_ms=40, tpot_ms=5)
    gpu = emulator_factory(ttft_ms=250, tpot_ms=5)
    out = tmp_path / "report"
    proc = run_cli(["--target", f"api={api.base_url('openai')}", "--target", f"gpu={gpu.base_url('openai')}",
                    "--model", "m", "--concurrency", "1,2", "--requests", "4", "--warmup", "1",
                    "--input-tokens", "16", "--output-tokens", "8", "--slo", "ttft=150ms", "--seed", "3",
                    "--out", str(out), "--html", "--raw"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "capacity" in proc.stdout and "api" in proc.stdout and "gpu" in proc.stdout

    report = orjson.loads((out / "bench.json").read_bytes())
    assert report["schema"] == SCHEMA
    provenance = report["provenance"]
    assert provenance["seed"] == 3 and len(provenance["workload"]["fingerprint"]) == 16
    assert provenance["tool_version"] and provenance["started_at"] and provenance["clock"]["monotonic"]
    assert [t["name"] for t in report["targets"]] == ["api", "gpu"]
    assert len(report["results"]) == 4
    for level in report["results"]:
        assert level["measured_requests"] == 4 and level["warmup_requests"] == 1
        assert set(level["latency_ms"]["ttft"]) >= {"p50", "p90", "p95", "p99", "p99_ci_low", "p99_ci_high"}
    ttft_p50 = {(r["target"], r["level"]): r["latency_ms"]["ttft"]["p50"] for r in report["results"]}
    assert ttft_p50[("api", 1)] < 100 < 250 <= ttft_p50[("gpu", 1)]

    capacity = read_capacity(out / "bench.json")
    assert capacity.targets["api"].met and capacity.targets["api"].max_concurrency == 2
    assert not capacity.targets["api"].bounded  # the highest level tested still met the SLO
    assert not capacity.targets["gpu"].met
    assert capacity.slo_ms["ttft"] == 150.0

    rows = list(csv.DictReader((out / "bench.csv").open()))
    assert [(r["target"], r["level"]) for r in rows] == [("api", "1"), ("api", "2"), ("gpu", "1"), ("gpu", "2")]
    for name in ("latency.png", "throughput.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "gpu" in page
    results = html_text(page.split("<h2>Results</h2>", 1)[1].split("<h2>Plots</h2>", 1)[0])
    for figure in ("tollway bench", "capacity", "TTFT p50", "api", "gpu", "c=1", "c=2", "4/4",
                   f"{ttft_p50[('api', 1)]:.1f}", "no level met the SLOs"):
        assert figure in results, figure
    raw = (out / "requests.jsonl").read_text().splitlines()
    assert len(raw) == 2 * 2 * (4 + 1)

    # both targets got the same prompts in the same order
    def prompts(emulator):
        return [e["body"]["messages"][0]["content"] for e in emulator.requests("m")[1:]]
    assert prompts(api)[:5] == prompts(gpu)[:5]


@pytest.mark.slow
def test_keys_come_from_the_environment_and_never_reach_the_output(emulator, tmp_path):
    emulator.set_profile("locked", {"api_key": "sk-right-key-4242"})
    target = f"locked={emulator.base_url('openai')},model=locked,key_env=LOCKED_KEY"
    wrong = run_cli(["--target", target, "--concurrency", "1", "--requests", "1", "--warmup", "0"],
                    env={"LOCKED_KEY": "sk-wrong-key-1717"})
    assert wrong.returncode == 1
    assert "target locked" in wrong.stderr and "probe" in wrong.stderr and "client_error" in wrong.stderr
    assert "sk-wrong-key-1717" not in wrong.stderr + wrong.stdout
    assert "the key came from $LOCKED_KEY" in wrong.stderr
    missing = run_cli(["--target", target, "--concurrency", "1", "--requests", "1"], env={"LOCKED_KEY": ""})
    assert missing.returncode == 1 and "no API key sent: $LOCKED_KEY is unset" in missing.stderr
    out = tmp_path / "ok"
    right = run_cli(["--target", target, "--concurrency", "1", "--requests", "2", "--warmup", "0",
                     "--out", str(out), "--raw", "--no-plots"], env={"LOCKED_KEY": "sk-right-key-4242"})
    assert right.returncode == 0, right.stderr
    everything = right.stdout + right.stderr + "".join(p.read_text(errors="replace") for p in out.iterdir()
                                                       if p.suffix in (".json", ".csv", ".jsonl"))
    assert "sk-right-key-4242" not in everything


def html_text(fragment: str) -> str:
    """The text a reader of an HTML fragment sees: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.mark.slow
def test_html_report_has_the_results_and_no_plots_means_no_pngs(emulator, tmp_path):
    out = tmp_path / "report"
    proc = run_cli(["--target", f"emu={emulator.base_url('openai')}", "--model", "m", "--concurrency", "2",
                    "--requests", "4", "--warmup", "0", "--input-tokens", "16", "--output-tokens", "4",
                    "--out", str(out), "--html", "--no-plots"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert not list(out.glob("*.png"))
    page = (out / "report.html").read_text()
    assert "data:image/png" not in page and "<h2>Plots</h2>" not in page
    results = html_text(page.split("<h2>Results</h2>", 1)[1].split("<h2>Provenance", 1)[0])
    level = orjson.loads((out / "bench.json").read_bytes())["results"][0]
    for figure in ("emu", "c=2", "4/4", f"{level['throughput']['requests_per_s']:.2f}",
                   "capacity: highest load"):
        assert figure in results, figure


def test_unreachable_target_fails_fast_naming_it():
    proc = run_cli(["--target", "gone=http://127.0.0.1:9/v1", "--model", "m", "--requests", "1"], timeout=60)
    assert proc.returncode == 1
    assert "target gone (http://127.0.0.1:9/v1, model m) failed the probe request: connection" in proc.stderr


@pytest.mark.parametrize("args,fragment", [
    (["--slo", "ttft=500"], "--slo ttft: '500' is not a duration"),
    (["--concurrency", "4", "--rate", "2"], "cannot be combined"),
    (["--concurrency", "0"], "greater than zero"),
    (["--input-tokens", "uniform:9,3"], "MAX must not be below MIN"),
    (["--warmup", "soon"], "must be a duration"),
    (["--extra-body", "[1]"], "must be a JSON object"),
    (["--html"], "give --out DIR"),
])
def test_bad_flags_are_named(args, fragment):
    result = CliRunner().invoke(bench, ["--target", "a=http://127.0.0.1:9/v1", "--model", "m", *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output


def test_no_target_is_a_usage_error():
    result = CliRunner().invoke(bench, ["--model", "m"])
    assert result.exit_code == 2 and "--target" in result.output


@pytest.mark.parametrize("content,fragment", [
    (b"{", "not JSON"),
    (b'{"schema": "other/v9"}', "schema is 'other/v9'"),
    (b'{"schema": "tollway.bench/v1"}', "'capacity.targets' is missing"),
    (b'{"schema": "tollway.bench/v1", "capacity": {"targets": {"a": {"target": "a"}}}}', "capacity.targets.a lacks"),
])
def test_read_capacity_names_the_file_and_field(tmp_path, content, fragment):
    path = tmp_path / "bench.json"
    path.write_bytes(content)
    with pytest.raises(BenchFileError, match=fragment) as info:
        read_capacity(path)
    assert str(path) in str(info.value)


@pytest.mark.slow
def test_jsonl_prompts_in_open_loop(emulator, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "alpha beta", "output_tokens": 3}\n'
                       '{"messages": [{"role": "user", "content": "gamma"}], "max_tokens": 5}\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(bench, [
        "--target", f"emu={emulator.base_url('openai')}", "--model", "m", "--prompts", str(prompts),
        "--rate", "10", "--arrivals", "poisson", "--duration", "1s", "--warmup", "0", "--seed", "5",
        "--out", str(out), "--no-plots"])
    assert result.exit_code == 0, result.output
    report = orjson.loads((out / "bench.json").read_bytes())
    assert report["provenance"]["workload"]["kind"] == "jsonl"
    assert len(report["provenance"]["workload"]["file_sha256"]) == 64
    (level,) = report["results"]
    assert level["mode"] == "rate" and level["arrivals"] == "poisson" and level["open_loop"]["target_rate"] == 10
    received = {e["body"]["messages"][-1]["content"]: e["body"]["max_tokens"] for e in emulator.requests("m")[1:]}
    assert received == {"alpha beta": 3, "gamma": 5}


@pytest.mark.slow
def test_shared_prefix_workload_sends_the_prefixes(emulator, tmp_path):
    result = CliRunner().invoke(bench, [
        "--target", f"emu={emulator.base_url('openai')}", "--model", "m", "--prefix-tokens", "50",
        "--prefix-groups", "2", "--input-tokens", "5", "--output-tokens", "2", "--concurrency", "2",
        "--requests", "12", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    bodies = [e["body"]["messages"] for e in emulator.requests("m")[1:]]
    assert len(bodies) == 12
    assert len({m[0]["content"] for m in bodies}) == 2 and all(m[0]["role"] == "system" for m in bodies)
    assert all(len(m[0]["content"].split()) == 50 for m in bodies)

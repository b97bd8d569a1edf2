"""`tollway plan` as a user runs it: a real CLI process reading real files, writing real outputs."""

from __future__ import annotations

import math
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import yaml

from tests.plan.support import busy_weekdays, write_ledger
from tests.processes import REPO, TOLLWAY

PNG = b"\x89PNG\r\n\x1a\n"


def run_plan(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*TOLLWAY, "plan", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def scenario_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


SCENARIO = {
    "workload": {"daily_input_tokens": 10_000_000, "daily_output_tokens": 2_000_000, "growth_per_month": "0.03"},
    "options": [
        {"kind": "per_token", "name": "api", "prices": {"input": "0.5", "output": "1.5"}},
        {"kind": "dedicated", "name": "units", "unit_monthly_fee": "100", "unit_tpm": 5000, "headroom": 0},
    ],
    "economics": {"horizons_years": [1, 3], "discount_rate": "0.05", "pricing_at": "2026-11-23"},
}


def test_json_png_and_markdown_outputs(tmp_path):
    charts, report = tmp_path / "charts", tmp_path / "out" / "plan.md"
    proc = run_plan("--scenario", str(scenario_file(tmp_path, SCENARIO)), "--json", "--png", str(charts),
                    "--markdown", str(report))
    assert proc.returncode == 0, proc.stderr
    plan = orjson.loads(proc.stdout)
    assert plan["schema"] == "tollway.plan/v1"
    options = {o["name"]: o for o in plan["options"]}
    # per day: 10 x $0.5 + 2 x $1.5 = $8; per month x 365/12 = $243.333333...
    assert options["api"]["now"]["monthly_usd"] == "243.333333"
    # 12M tokens/day flat = 8333.3 tpm -> 2 units of 5000 -> $200
    assert options["units"]["now"]["units"] == 2 and options["units"]["now"]["monthly_usd"] == "200"
    assert plan["cheapest"]["now"]["option"] == "units"
    first, second = plan["break_evens"][:2]
    # the api costs $8 per 12M tokens; it reaches one unit's $100 at 100 / (8/12M x 365/12) tokens a day
    assert first["between"] == ["api", "units"] and not first["at_step"]
    assert (first["cheaper_below"], first["cheaper_above"]) == ("api", "units")
    assert Decimal(first["daily_tokens"]) == pytest.approx(Decimal(100) / (Decimal(8) / 12_000_000 * 365 / 12),
                                                           rel=Decimal("1e-12"))
    # one unit carries 5000 tpm = 7.2M tokens a day; above it a second unit ($200) loses to the api ($146)
    assert second["at_step"] and Decimal(second["daily_tokens"]) == Decimal(7_200_000)
    assert (second["cheaper_below"], second["cheaper_above"]) == ("units", "api")
    assert [row["input"] for row in plan["sensitivity"]]  # present, ranked
    for name in ("cost-vs-volume.png", "cost-per-million-vs-utilisation.png"):
        assert (charts / name).read_bytes()[:8] == PNG
    text = report.read_text()
    assert "## Answer" in text and "## Break-even volumes" in text and "## Sensitivity" in text
    assert "](../charts/cost-vs-volume.png)" in text


def test_terminal_table_from_flags_only(tmp_path):
    options_only = scenario_file(tmp_path, {"options": SCENARIO["options"]})
    proc = run_plan("--daily-input", "2e8", "--daily-cached", "5e7", "--daily-output", "40_000_000",
                    "--peak-to-average", "2", "--scenario", str(options_only),
                    "--no-sensitivity", "--horizon", "2", "--at", "2026-11-23")
    assert proc.returncode == 0, proc.stderr
    assert "options today" in proc.stdout and "2y present value" in proc.stdout
    assert "Cheapest now (240M tokens/day)" in proc.stdout


def test_real_ledger_and_real_catalog(tmp_path):
    ledger = write_ledger(tmp_path / "ledger.db", busy_weekdays(days=14))
    scenario = scenario_file(tmp_path, {"options": [
        {"kind": "per_token", "name": "today", "use_workload_mix": True},
        {"kind": "per_token", "name": "qwen", "provider": "qwen", "model": "qwen3.5-plus"},
    ], "economics": {"pricing_at": "2026-11-23"}})
    proc = run_plan("--scenario", str(scenario), "--from-ledger", f"sqlite:///{ledger}", "--json", "--no-sensitivity")
    assert proc.returncode == 0, proc.stderr
    plan = orjson.loads(proc.stdout)
    workload = plan["workload"]
    assert workload["source"].startswith("ledger sqlite:")
    assert (workload["daily_input_tokens"], workload["daily_output_tokens"]) == ("44000", "8800")
    assert workload["model_mix"][0]["model"] == "deepseek-flash"
    today = next(o for o in plan["options"] if o["name"] == "today")
    assert Decimal(today["now"]["monthly_usd"]) > 0


@pytest.mark.parametrize("args, expected", [
    (["--daily-input", "100"], "no workload"),
    (["--daily-input", "100", "--daily-output", "10"], "no options to compare"),
    (["--daily-input", "100", "--daily-output", "10", "--per-token", "deepseek"], "write PROVIDER/MODEL"),
    (["--daily-input", "100", "--daily-output", "10", "--per-token", "deepseek/no-such-model"],
     "options[0]: model deepseek/no-such-model is not in the price catalog"),
    (["--daily-input", "100", "--daily-output", "10", "--batchable-share", "2", "--per-token", "a/b"],
     "workload.batchable_share"),
    (["--from-ledger", "/nonexistent/ledger.db", "--per-token", "a/b"], "no ledger file at /nonexistent/ledger.db"),
    (["--daily-input", "100", "--daily-output", "10", "--bench-json", "x.json", "--per-token", "a/b"],
     "--bench-json and --bench-target go together"),
])
def test_bad_input_exits_with_a_clear_error(args, expected):
    proc = run_plan(*args)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_scenario_file_names_field(tmp_path):
    bad = {**SCENARIO, "options": [{"kind": "dedicated", "name": "u", "unit_monthly_fee": "-1", "unit_tpm": 10}]}
    proc = run_plan("--scenario", str(scenario_file(tmp_path, bad)))
    assert proc.returncode == 1
    assert "scenario.yaml: options[0].unit_monthly_fee" in proc.stderr and "-1" in proc.stderr


def test_the_example_scenario_runs():
    example = REPO / "examples" / "plan-scenario.yaml"
    proc = run_plan("--scenario", str(example), "--json", "--no-sensitivity")
    assert proc.returncode == 0, proc.stderr
    assert {o["kind"] for o in orjson.loads(proc.stdout)["options"]} == {
        "per_token", "provisioned", "dedicated", "self_hosted"}


@pytest.mark.slow
def test_self_hosted_replicas_from_a_real_bench_run(emulator_factory, tmp_path):
    """tollway bench against a real emulator writes the capacity that tollway plan sizes replicas with."""
    server = emulator_factory(ttft_ms=5, tpot_ms=2)
    out = tmp_path / "bench"
    bench = subprocess.run([*TOLLWAY, "bench", "--target", f"gpu={server.base_url('openai')}", "--model", "m",
                            "--concurrency", "1,2", "--requests", "4", "--warmup", "0", "--input-tokens", "32",
                            "--output-tokens", "16", "--slo", "ttft=2s", "--no-plots", "--no-live",
                            "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert bench.returncode == 0, bench.stderr + bench.stdout
    capacity = orjson.loads((out / "bench.json").read_bytes())["capacity"]["targets"]["gpu"]
    output_tps = Decimal(str(capacity["output_tokens_per_s"]))
    total_tps = Decimal(str(capacity["total_tokens_per_s"]))

    scenario = scenario_file(tmp_path, {
        "workload": {"daily_input_tokens": 400_000_000, "daily_output_tokens": 200_000_000, "peak_to_average": 2},
        "options": [{"kind": "self_hosted", "name": "gpus", "gpu_hourly_usd": {"on_demand": "2"},
                     "gpus_per_replica": 1}],
        "economics": {"pricing_at": "2026-11-23"}})
    proc = run_plan("--scenario", str(scenario), "--bench-json", str(out / "bench.json"), "--bench-target", "gpu",
                    "--json", "--no-sensitivity")
    assert proc.returncode == 0, proc.stderr
    option = orjson.loads(proc.stdout)["options"][0]
    # the JSON carries its floats' shortest repr; the planner reads the same text exactly
    out_needed = math.ceil(Decimal(200_000_000) / 1440 * 2 / (output_tps * 60))
    total_needed = math.ceil(Decimal(600_000_000) / 1440 * 2 / (total_tps * 60))
    assert option["now"]["units"] == max(out_needed, total_needed) + 1

    missing = run_plan("--scenario", str(scenario), "--bench-json", str(out / "bench.json"), "--bench-target", "cpu")
    assert missing.returncode == 1 and "no target 'cpu' in capacity.targets (found: gpu)" in missing.stderr


def test_months_count_from_one_in_json_and_terminal_and_each_pair_is_listed_once(tmp_path):
    # 500 tokens/min flat, doubling monthly; a 1000 tokens/min reservation without overflow fits
    # month 1 (500) and month 2 (1000) and is outgrown in month 3. Units of 400 tokens/min cross the
    # api's line, then each added unit is a step: several break-evens between the same two options.
    scenario = {
        "workload": {"daily_input_tokens": 720_000, "daily_output_tokens": 0, "growth_per_month": 1},
        "options": [
            {"kind": "provisioned", "name": "small", "reserved_tpm": 1000, "monthly_fee": 10},
            {"kind": "per_token", "name": "api", "prices": {"input": "1", "output": "1"}},
            {"kind": "dedicated", "name": "units", "unit_monthly_fee": "15", "unit_tpm": 400, "headroom": 0},
        ],
        "economics": {"horizons_years": [1], "discount_rate": 0, "pricing_at": "2026-11-23",
                      "max_volume_multiple": 3},
    }
    path = scenario_file(tmp_path, scenario)
    as_json = run_plan("--scenario", str(path), "--json", "--no-sensitivity")
    assert as_json.returncode == 0, as_json.stderr
    plan = orjson.loads(as_json.stdout)
    small = next(o for o in plan["options"] if o["name"] == "small")
    assert small["horizons"][0]["first_unfit_month"] == 3
    assert plan["cheapest"]["projected"]["months_from_now"] == 12
    pairs = [tuple(be["between"]) for be in plan["break_evens"]]
    repeated = {pair for pair in pairs if pairs.count(pair) > 1}
    assert repeated, "the scenario must give one pair several crossings"

    terminal = run_plan("--scenario", str(path), "--no-sensitivity")
    assert terminal.returncode == 0, terminal.stderr
    assert "(outgrown in month 3)" in terminal.stdout
    assert "in 12 months" in terminal.stdout
    listed = terminal.stdout.split("Break-even volumes", 1)[1].split("Cheapest now", 1)[0]
    for first, second in set(pairs):
        assert listed.count(f"{first} vs {second}:") == 1
    assert "0000" not in listed, "no micro-dollar residue at steps"


@pytest.mark.parametrize("columns", ["80", "120"])
def test_tables_fit_the_screen_without_cutting_a_figure(tmp_path, columns):
    path = scenario_file(tmp_path, SCENARIO)
    plan = orjson.loads(run_plan("--scenario", str(path), "--json").stdout)
    proc = subprocess.run([*TOLLWAY, "plan", "--scenario", str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": columns})
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout and "..." not in proc.stdout, proc.stdout
    assert max(map(len, proc.stdout.splitlines())) <= int(columns), proc.stdout
    for option in plan["options"]:
        assert option["name"] in proc.stdout
        assert f"${Decimal(option['now']['monthly_usd']):,.2f}" in proc.stdout  # monthly cost, in cents
    wide = subprocess.run([*TOLLWAY, "plan", "--scenario", str(path), "--wide"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": columns})
    assert "utilisation" in wide.stdout and "not shown" not in wide.stdout

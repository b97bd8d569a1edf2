"""Reading one replica's throughput from `tollway bench` JSON, defensively."""

import json
from decimal import Decimal

import pytest

from tollway.plan.bench_capacity import read_bench_capacity, with_bench_throughput
from tollway.plan.scenario import ScenarioError, parse_scenario


def bench_file(tmp_path, targets: dict, schema: str = "tollway.bench/v1"):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"schema": schema, "capacity": {"targets": targets}}))
    return path


def entry(**fields):
    return {"met": True, "bounded": True, "output_tokens_per_s": 812.25, "total_tokens_per_s": 2436.75, **fields}


def test_reads_both_throughputs_exactly(tmp_path):
    measured = read_bench_capacity(bench_file(tmp_path, {"vllm": entry()}), "vllm")
    assert measured.output_tokens_per_s == Decimal("812.25")
    assert measured.total_tokens_per_s == Decimal("2436.75")
    assert measured.notes == ()
    spec = parse_scenario({"options": [{"kind": "self_hosted", "name": "g", "gpu_hourly_usd": {"on_demand": 1},
                                        "gpus_per_replica": 1, "replica_output_tokens_per_s": 5}]}).options[0]
    updated = with_bench_throughput(spec, measured)
    assert updated.replica_output_tokens_per_s == Decimal("812.25")
    assert updated.replica_total_tokens_per_s == Decimal("2436.75")


def test_an_unbounded_capacity_is_noted_as_a_lower_bound(tmp_path):
    measured = read_bench_capacity(bench_file(tmp_path, {"vllm": entry(bounded=False)}), "vllm")
    assert "lower bound" in measured.notes[0]


@pytest.mark.parametrize("targets, target, message", [
    ({"vllm": entry()}, "sglang", "no target 'sglang' in capacity.targets (found: vllm)"),
    ({"vllm": {k: v for k, v in entry().items() if k != "total_tokens_per_s"}}, "vllm",
     "missing key 'capacity.targets.vllm.total_tokens_per_s'"),
    ({"vllm": entry(output_tokens_per_s=None, met=False)}, "vllm", "capacity.targets.vllm.met is false"),
    ({"vllm": entry(output_tokens_per_s=0)}, "vllm", "'capacity.targets.vllm.output_tokens_per_s' must be a positive"),
    ({"vllm": entry(output_tokens_per_s="fast")}, "vllm", "must be a positive number"),
])
def test_errors_name_the_file_and_the_key(tmp_path, targets, target, message):
    path = bench_file(tmp_path, targets)
    with pytest.raises(ScenarioError) as caught:
        read_bench_capacity(path, target)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_wrong_files_are_refused(tmp_path):
    with pytest.raises(ScenarioError, match="schema is 'other/v9'"):
        read_bench_capacity(bench_file(tmp_path, {}, schema="other/v9"), "x")
    no_capacity = tmp_path / "nocap.json"
    no_capacity.write_text(json.dumps({"schema": "tollway.bench/v1", "results": []}))
    with pytest.raises(ScenarioError, match="missing key 'capacity'"):
        read_bench_capacity(no_capacity, "x")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        read_bench_capacity(broken, "x")
    with pytest.raises(ScenarioError, match="cannot read bench JSON"):
        read_bench_capacity(tmp_path / "absent.json", "x")

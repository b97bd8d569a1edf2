"""`tollway route --explain`: candidates, removals with reasons, scores and the plan, sending nothing."""

import subprocess

import orjson
import yaml
from click.testing import CliRunner

from tests.processes import TOLLWAY, free_port
from tests.routing.support import DEPLOYMENTS, PROVIDERS
from tollway.routing.explain_command import route

GROUPS = {
    "auto": {"deployments": ["cheap-text", "vision-mid", "long-big", "eu-model"], "strategy": "cheapest"},
    "smart": {"deployments": ["cheap-text", "vision-mid", "long-big"], "strategy": "tiers",
              "tiers": {"low": ["cheap-text"], "high": ["long-big"], "default": ["vision-mid"]},
              "complexity": {"classifier": "model", "deployment": "cheap-text"}},
}


def config_file(tmp_path):
    # api_key_env points at variables that are not set: --explain must not need provider secrets
    providers = {name: {**p, "api_key_env": f"UNSET_KEY_{name.upper()}"} for name, p in PROVIDERS.items()}
    path = tmp_path / "tollway.yaml"
    path.write_text(yaml.safe_dump({"providers": providers, "deployments": DEPLOYMENTS, "route_groups": GROUPS}))
    return path


def explain(tmp_path, body, *args):
    return CliRunner().invoke(route, ["--explain", "--config", str(config_file(tmp_path)), *args],
                              input=orjson.dumps(body))


IMAGE_BODY = {"model": "auto", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]}


def test_explains_removals_scores_and_plan(tmp_path):
    result = explain(tmp_path, IMAGE_BODY, "-H", "x-tollway-residency: sg, us")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "auto -> route group auto (strategy cheapest)" in out
    assert "needs vision" in out
    assert "residency: sg, us (from x-tollway-residency: sg, us)" in out
    assert "removed by residency: jurisdiction cn is not in sg, us" in out
    assert "removed by residency: jurisdiction eu is not in sg, us" in out
    assert "plan: 1. vision-mid  2. long-big" in out
    assert "x-tollway-route: cheapest: vision-mid $" in out


def test_json_output_lists_every_candidate(tmp_path):
    result = explain(tmp_path, IMAGE_BODY, "--json")
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    verdicts = {c["deployment"]: (c["removed_by"], c["reason"]) for c in data["candidates"]}
    assert verdicts["cheap-text"] == ("capability", "cannot handle image input")
    assert verdicts["eu-model"] == ("capability", "cannot handle image input")
    assert verdicts["vision-mid"][0] is None and verdicts["long-big"][0] is None
    assert data["plan"] == ["vision-mid", "long-big"]
    assert data["request"]["needs"] == ["vision"]
    scores = {c["deployment"]: c["score"] for c in data["candidates"]}
    assert scores["vision-mid"].startswith("$") and scores["cheap-text"] is None


def test_a_key_policy_that_allows_nothing_explains_the_503_and_exits_1(tmp_path):
    result = explain(tmp_path, IMAGE_BODY, "--key-residency", "self-hosted")
    assert result.exit_code == 1
    assert "result: 503 residency_unavailable" in result.output
    assert "key (simulated): self-hosted" in result.output


def test_tiers_show_the_heuristic_grade_and_say_the_model_was_not_asked(tmp_path):
    body = {"model": "smart", "messages": [{"role": "user", "content": "hi!"}]}
    result = explain(tmp_path, body, "--json")
    data = orjson.loads(result.output)
    assert data["complexity"]["level"] == "low" and data["plan"][0] == "cheap-text"
    assert any("would first ask cheap-text" in note for note in data["notes"])


def test_bad_requests_and_models_are_named(tmp_path):
    assert "model 'nope' is not served" in explain(tmp_path, {"model": "nope", "messages": [{"role": "user", "content": "x"}]}).output
    assert "'messages' must be a non-empty array" in explain(tmp_path, {"model": "auto", "messages": []}).output
    bad_header = explain(tmp_path, {"model": "auto", "messages": [{"role": "user", "content": "x"}]}, "-H", "nocolon")
    assert bad_header.exit_code == 2 and "'nocolon' is not 'Name: value'" in bad_header.output
    without_flag = CliRunner().invoke(route, ["--config", str(config_file(tmp_path))], input=b"{}")
    assert without_flag.exit_code == 2 and "say --explain" in without_flag.output


def test_the_cli_reads_a_request_file(tmp_path):
    request = tmp_path / "request.json"
    request.write_bytes(orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}))
    done = subprocess.run([*TOLLWAY, "route", "--explain", str(request), "--config", str(config_file(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "x-tollway-route: cheapest: cheap-text" in done.stdout
    assert free_port()  # nothing was listening or sent: the command only read files


def test_the_config_in_docs_routing_md_loads_and_routes(tmp_path):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text()
    block = re.search(r"```yaml\n(providers:.*?)```", doc, re.S).group(1)
    path = tmp_path / "doc.yaml"
    path.write_text(block)
    image = {"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"}, {"type": "image_url", "image_url": {"url": "https://e/c.png"}}]}]}
    data = orjson.loads(CliRunner().invoke(route, ["--explain", "--config", str(path), "--json"],
                                           input=orjson.dumps(image)).output)
    assert data["plan"] == ["local-qwen", "qwen-flash", "deepseek", "qwen-plus"]
    hard = {"model": "smart", "messages": [{"role": "user", "content": "Prove step by step that sqrt(2) is irrational, "
                                                                       "then compare two proofs."}]}
    data = orjson.loads(CliRunner().invoke(route, ["--explain", "--config", str(path), "--json"],
                                           input=orjson.dumps(hard)).output)
    assert data["plan"][0] == "qwen-plus" and data["complexity"]["level"] == "high"
    legal = {"model": "legal", "messages": [{"role": "user", "content": "hi"}]}
    result = CliRunner().invoke(route, ["--explain", "--config", str(path), "-H", "x-tollway-residency: cn"],
                                input=orjson.dumps(legal))
    assert result.exit_code == 1 and "residency_unavailable" in result.output

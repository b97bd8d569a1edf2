"""`tollway batch plan FILE`: the schedule and the expected cost against sending now, nothing sent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import yaml
from click.testing import CliRunner

from tollway.batch.plan_command import batch

CONFIG = {
    "providers": {"deepseek": {"kind": "deepseek", "base_url": "https://api.deepseek.com/v1"},
                  "kimi": {"kind": "kimi", "base_url": "https://api.moonshot.ai/v1"}},
    "deployments": {"ds": {"provider": "deepseek", "model": "deepseek-flash"},
                    "kimi": {"provider": "kimi", "model": "kimi-k2.5"}},
    "route_groups": {"chat": {"deployments": ["ds"]}, "kimi": {"deployments": ["kimi"]}},
}


def _files(tmp_path: Path, models: list[str]) -> tuple[Path, Path]:
    config = tmp_path / "tollway.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    lines = tmp_path / "in.jsonl"
    lines.write_bytes(b"".join(orjson.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                             "body": {"model": model, "max_tokens": 200,
                                                      "messages": [{"role": "user", "content": "Summarise " * 50}]}})
                               + b"\n" for i, model in enumerate(models)))
    return config, lines


def test_plan_shows_the_off_peak_schedule_and_the_saving(tmp_path: Path):
    config, lines = _files(tmp_path, ["chat", "chat", "kimi"])
    result = CliRunner().invoke(batch, ["plan", str(lines), "--config", str(config), "--at", "2026-12-08T02:00"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3 lines, window 24h: created 2026-12-08 02:00 UTC, due 2026-12-09 02:00 UTC" in out
    assert "ds                       2  scheduled off_peak  2026-12-08 04:00" in out
    assert "kimi                     1  scheduled standard  2026-12-08 02:00" in out
    assert "saves $" in out and "reserves up to $" in out

    as_json = CliRunner().invoke(batch, ["plan", str(lines), "--config", str(config), "--at", "2026-12-08T02:00",
                                         "--json"])
    plan = orjson.loads(as_json.output)
    ds = next(s for s in plan["shares"] if s["deployment"] == "ds")
    kimi = next(s for s in plan["shares"] if s["deployment"] == "kimi")
    saved = Decimal(plan["cost_now_usd"]) - Decimal(plan["expected_cost_usd"])
    assert saved == Decimal(ds["expected_cost_usd"])  # the off-peak half of DeepSeek's cost
    assert Decimal(plan["expected_cost_usd"]) == Decimal(ds["expected_cost_usd"]) + Decimal(kimi["expected_cost_usd"])


def test_plan_refuses_a_bad_file_and_a_window_it_cannot_meet(tmp_path: Path):
    config, lines = _files(tmp_path, ["chat", "nope"])
    result = CliRunner().invoke(batch, ["plan", str(lines), "--config", str(config)])
    assert result.exit_code != 0 and "Line 2 of the input file: the model 'nope' does not exist" in result.output
    config, lines = _files(tmp_path, ["chat"])
    result = CliRunner().invoke(batch, ["plan", str(lines), "--config", str(config), "--window", "900h"])
    assert result.exit_code != 0 and "batch.max_window_h" in result.output

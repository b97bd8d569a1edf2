"""Claude Code (npm @anthropic-ai/claude-code) through tollway: `claude -p` with ANTHROPIC_BASE_URL pointing
at `tollway serve`, to an emulated DeepSeek (translated) and an emulated Anthropic upstream, offline.
scripts/test installs it under .cache/claude-code (scripts/install-claude-code); it is never installed here."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLAUDE_BIN = Path(__file__).resolve().parents[2] / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"


@pytest.mark.skipif(not CLAUDE_BIN.exists(), reason="Claude Code is not installed: run scripts/install-claude-code")
@pytest.mark.parametrize("group", ["chat", "claude"])
def test_claude_code_prints_an_answer_through_tollway(claude_and_deepseek, group, tmp_path):
    emu, gw = claude_and_deepseek
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ANTHROPIC_BASE_URL": gw.url,
           "ANTHROPIC_API_KEY": "client-key", "ANTHROPIC_MODEL": group, "ANTHROPIC_SMALL_FAST_MODEL": group,
           "ANTHROPIC_DEFAULT_HAIKU_MODEL": group,
           # documented switches: no telemetry, error reports, update checks or other traffic beyond the base URL
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
           "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1"}
    done = subprocess.run([str(CLAUDE_BIN), "-p", "say hi", "--output-format", "json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(done.stdout)
    assert result["is_error"] is False and result["result"], result
    rows = gw.rows(wait_for=1)
    served = [r for r in rows if r["endpoint"] == "messages"]
    assert served and all(r["status"] == "ok" for r in served), [(r["endpoint"], r["error"]) for r in rows]
    assert all(r["requested_model"] == group for r in served)

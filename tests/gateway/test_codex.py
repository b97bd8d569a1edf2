"""Codex CLI (npm @openai/codex) through tollway: `codex exec` with a custom model provider whose base URL
is `tollway serve` (wire_api = "responses"), to an emulated DeepSeek upstream, offline. scripts/test
installs it under .cache/codex (scripts/install-codex); it is never installed here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.gateway.support import PROVIDER_KEYS, emulator_config

pytestmark = pytest.mark.slow

CODEX_BIN = Path(__file__).resolve().parents[2] / ".cache" / "codex" / "node_modules" / ".bin" / "codex"


def codex_config(base_url: str) -> str:
    """A CODEX_HOME config.toml naming tollway as the model provider. Nothing else is reached: no analytics,
    no update check, no plugin marketplace sync (Codex otherwise runs `git ls-remote` on OpenAI's plugins
    repository at start; with these switches its only connection is to the base URL), and Codex's tools that only OpenAI runs are off: web search is a built-in tool and
    the sub-agent tools a `namespace` tool, both of which tollway answers with a 400 naming them."""
    return f"""model = "chat"
model_provider = "tollway"
check_for_update_on_startup = false
web_search = "disabled"

[features]
goals = false
plugins = false
remote_plugin = false
plugin_sharing = false
apps = false

[agents]
enabled = false

[analytics]
enabled = false

[model_providers.tollway]
name = "tollway"
base_url = "{base_url}"
wire_api = "responses"
env_key = "TOLLWAY_API_KEY"
"""


@pytest.mark.skipif(not CODEX_BIN.exists(), reason="Codex CLI is not installed: run scripts/install-codex")
def test_codex_exec_answers_through_tollway(emulator_factory, gateway_factory, tmp_path):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12}}})
    gw = gateway_factory(emulator_config(emu, group=["ds-flash"]), env=PROVIDER_KEYS)
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(codex_config(gw.base_url))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CODEX_HOME": str(home),
           "TOLLWAY_API_KEY": "client-key", "NO_PROXY": "127.0.0.1"}
    done = subprocess.run([str(CODEX_BIN), "exec", "--skip-git-repo-check", "say hi"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert done.stdout.strip(), "codex exec printed the model's answer"
    rows = gw.rows(wait_for=1)
    served = [r for r in rows if r["endpoint"].startswith("responses")]
    assert served and all(r["status"] == "ok" for r in served), [(r["endpoint"], r["error"]) for r in rows]
    assert all(r["requested_model"] == "chat" for r in served if r["endpoint"] == "responses")

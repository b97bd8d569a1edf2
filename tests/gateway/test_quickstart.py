"""scripts/quickstart: it installs only what serving needs, and every line it prints to try works as printed.

The try-lines come from scripts/quickstart-try, the one place the quickstart prints them from; the slow test
runs each of them through bash against `tollway serve` started as the quickstart starts it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.processes import REPO, TOLLWAY, free_port, running, wait_http
from tollway.selfhost.local_cache import cache_root

SCRIPTS = REPO / "scripts"
TEST_ONLY_PACKAGES = {"redis-server", "chromium", "chromium-driver", "wrk", "util-linux"}
BUILD_PACKAGES = {"cmake", "g++", "make"}


def printed_try_lines(port: int) -> list[str]:
    """Each command scripts/quickstart prints to try: indented lines, with `\\` continuations joined."""
    text = subprocess.run([str(SCRIPTS / "quickstart-try"), str(port)], capture_output=True, text=True,
                          check=True).stdout
    commands: list[str] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            commands[-1] += "\n" + line
        elif line.startswith("  ") and line.strip():
            commands.append(line.strip())
        continuing = (continuing or line.startswith("  ")) and line.endswith("\\")
    return commands


def missing_packages(tmp_path: Path, *purposes: str) -> set[str]:
    """What install-system-packages would install on a machine with none of the tools on PATH."""
    bare = tmp_path / "bare-bin"
    if not bare.exists():
        bare.mkdir()
        for tool in ("bash", "python3", "grep", "sort", "ls", "id", "env", "dirname"):
            if found := shutil.which(tool):
                (bare / tool).symlink_to(found)
    args = [arg for purpose in purposes for arg in ("--for", purpose)]
    result = subprocess.run([str(SCRIPTS / "install-system-packages"), *args, "--dry-run"], capture_output=True,
                            text=True, env={"PATH": str(bare)}, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_try_lines_are_the_curl_the_python_and_the_usage_line() -> None:
    lines = printed_try_lines(4321)
    assert [line.split()[0].rsplit("/", 1)[-1] for line in lines] == ["curl", "python", "tollway"]
    assert all("127.0.0.1:4321/v1" in line for line in lines[:2])
    assert lines[1].startswith(f"{REPO}/.venv/bin/python -c"), "absolute, so it works from any directory"


def test_serving_needs_no_test_or_build_packages(tmp_path: Path) -> None:
    serve = missing_packages(tmp_path, "serve")
    assert "curl" in serve, "the first try-line is a curl command"
    assert not serve & (TEST_ONLY_PACKAGES | BUILD_PACKAGES)
    assert missing_packages(tmp_path, "build") == BUILD_PACKAGES


def test_the_test_set_is_everything(tmp_path: Path) -> None:
    everything = missing_packages(tmp_path, "test")
    assert TEST_ONLY_PACKAGES | BUILD_PACKAGES | {"curl"} <= everything
    assert missing_packages(tmp_path) == everything, "no --for installs for test: what .ci/run gets"


def test_unknown_purpose_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([str(SCRIPTS / "install-system-packages"), "--for", "everything"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_quickstart_venv_gets_what_the_python_try_line_imports() -> None:
    script = (SCRIPTS / "quickstart").read_text()
    extras = re.search(r"pip install .*-e '\.\[([\w,]+)\]'", script)
    assert extras, "scripts/quickstart installs tollway with extras"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = {re.split(r"[<>=\[;\s]", requirement, maxsplit=1)[0].lower()
                 for extra in extras.group(1).split(",") for requirement in project["optional-dependencies"][extra]}
    installed |= {re.split(r"[<>=\[;\s]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]}
    imported = set(re.findall(r"from (\w+) import", printed_try_lines(4000)[1]))
    assert imported == {"openai"} and imported <= installed


@pytest.mark.parametrize("prebuilt_works", [True, False], ids=["prebuilt", "source-build"])
def test_quickstart_installs_a_compiler_only_when_it_must_build(tmp_path: Path, prebuilt_works: bool) -> None:
    """scripts/quickstart itself, run with its helpers replaced by recorders of how they were called."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPTS / "quickstart", repo / "scripts" / "quickstart")
    calls = tmp_path / "calls"
    record = f'#!/bin/sh\necho "$(basename "$0") $*" >> {calls}\n'
    no_build_status = 0 if prebuilt_works else 3
    helpers = {
        "scripts/install-system-packages": record,
        "scripts/quickstart-try": record,
        ".venv/bin/python": record,
        ".venv/bin/pip": record,
        ".venv/bin/tollway": record + f'[ "$2 $3" = "prepare --no-build" ] && exit {no_build_status}\nexit 0\n',
    }
    for name, text in helpers.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        (repo / name).chmod(0o755)
    result = subprocess.run([str(repo / "scripts" / "quickstart")], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TOLLWAY_PORT": "4555"})
    assert result.returncode == 0, result.stderr
    steps = calls.read_text().splitlines()
    assert steps[0] == "install-system-packages --for serve"
    assert steps[1] == "pip install -q --disable-pip-version-check -e .[client]"
    assert steps[2] == "tollway local-model prepare --no-build"
    build = ["install-system-packages --for build", "tollway local-model prepare"]
    assert steps[3:-2] == ([] if prebuilt_works else build)
    assert steps[-2:] == ["quickstart-try 4555", "tollway serve --port 4555"]


def test_quickstart_stops_on_a_prepare_failure_that_a_compiler_would_not_fix(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPTS / "quickstart", repo / "scripts" / "quickstart")
    for name, text in {"scripts/install-system-packages": "#!/bin/sh\necho \"$*\" >> ../installs\n",
                       ".venv/bin/python": "#!/bin/sh\n", ".venv/bin/pip": "#!/bin/sh\n",
                       ".venv/bin/tollway": "#!/bin/sh\necho 'pip could not download' >&2; exit 1\n"}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        (repo / name).chmod(0o755)
    result = subprocess.run([str(repo / "scripts" / "quickstart")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "pip could not download" in result.stderr
    assert (tmp_path / "installs").read_text().splitlines() == ["--for serve"]


@pytest.mark.slow
@pytest.mark.llama
def test_every_printed_try_line_works_against_the_quickstart_gateway(tmp_path: Path, llama_server: object) -> None:
    """`tollway serve` with no config, as scripts/quickstart runs it; then each try-line, as printed."""
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "TOLLWAY_CONFIG": "",
           "TOLLWAY_CACHE_DIR": str(cache_root())}  # HOME moves; the cached llama-server and model stay
    with running([*TOLLWAY, "serve", "--port", str(port)], f"http://127.0.0.1:{port}/healthz",
                 tmp_path / "serve.log", env=env, cwd=tmp_path):
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
        curl, python, usage = (run_as_typed(line, env, tmp_path) for line in printed_try_lines(port))
        assert json.loads(curl)["choices"][0]["message"]["content"].strip()
        assert python.strip(), "the python line prints the model's answer"
        assert "tollway usage" in usage and "no ledger" not in usage
        usage_line = printed_try_lines(port)[2]
        recorded = json.loads(run_as_typed(f"{usage_line} --json", env, tmp_path))
        assert sum(line["requests"] for line in recorded["lines"]) == 2, "the curl and the python request"


def run_as_typed(command: str, env: dict[str, str], cwd: Path) -> str:
    """Run one printed line the way a user pasting it into bash would; return its output."""
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=cwd, timeout=240)
    assert result.returncode == 0, f"{command}\nexited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout

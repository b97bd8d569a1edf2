"""One replica's throughput at the SLO, read from a `tollway bench` JSON file.

Only the few keys the planner needs are read (capacity.targets.<name>.output_tokens_per_s and
total_tokens_per_s, with met/bounded), each checked on its own, so a file from a newer or older bench
still works when those are present and fails with the exact missing key when not. Numbers are parsed
as Decimal from their JSON text, so what was measured is what gets multiplied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tollway.plan.scenario import ScenarioError, SelfHostedOption

BENCH_SCHEMA = "tollway.bench/v1"


@dataclass(frozen=True)
class ReplicaThroughput:
    """Tokens per second one replica sustained at the highest load that met the SLOs."""

    output_tokens_per_s: Decimal
    total_tokens_per_s: Decimal
    source: str
    notes: tuple[str, ...] = ()


def read_bench_capacity(path: Path, target: str) -> ReplicaThroughput:
    """The measured capacity of `target` in the bench JSON at `path`; errors name the file and the key."""
    data = _load(path)
    schema = data.get("schema")
    if schema is not None and schema != BENCH_SCHEMA:
        raise ScenarioError(f"{path}: schema is {schema!r}, expected {BENCH_SCHEMA!r}")
    targets = _get(_get(data, "capacity", path, "capacity"), "targets", path, "capacity.targets")
    if not isinstance(targets, dict):
        raise ScenarioError(f"{path}: capacity.targets is not an object")
    if target not in targets:
        known = ", ".join(sorted(targets)) or "(none)"
        raise ScenarioError(f"{path}: no target {target!r} in capacity.targets (found: {known})")
    entry = targets[target]
    where = f"capacity.targets.{target}"
    if not isinstance(entry, dict):
        raise ScenarioError(f"{path}: {where} is not an object")
    if entry.get("met") is False:
        raise ScenarioError(f"{path}: {where}.met is false: no load level of {target!r} met the SLOs, "
                            "so it has no capacity at the SLO")
    output = _rate(entry, "output_tokens_per_s", path, where)
    total = _rate(entry, "total_tokens_per_s", path, where)
    notes = []
    if entry.get("bounded") is False:
        notes.append(f"bench target {target!r} met the SLOs at every level tested: its capacity is a lower bound")
    return ReplicaThroughput(output, total, f"{path} target {target}", tuple(notes))


def with_bench_throughput(spec: SelfHostedOption, throughput: ReplicaThroughput) -> SelfHostedOption:
    """The option with its per-replica throughput replaced by the measured one."""
    return spec.model_copy(update={"replica_output_tokens_per_s": throughput.output_tokens_per_s,
                                   "replica_total_tokens_per_s": throughput.total_tokens_per_s, "bench": None})


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(), parse_float=Decimal)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read bench JSON ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a bench JSON file is an object at the top level")
    return data


def _get(container: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(container, dict) or key not in container:
        raise ScenarioError(f"{path}: missing key {where!r} (is this a `tollway bench` JSON file?)")
    return container[key]


def _rate(entry: dict[str, Any], key: str, path: Path, where: str) -> Decimal:
    if key not in entry:
        raise ScenarioError(f"{path}: missing key '{where}.{key}'")
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or value <= 0:
        raise ScenarioError(f"{path}: '{where}.{key}' must be a positive number of tokens/s (got {value!r})")
    return Decimal(value)

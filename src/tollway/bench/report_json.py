"""The JSON report (schema `tollway.bench/v1`, documented in docs/bench.md) and the reader for its
`capacity` section.

Why JSON with provenance: a figure without its conditions cannot be compared or trusted later. The file
says which tool version measured what target and model, with which workload (seed and fingerprint), when,
on which clock, so two files can be compared and `tollway plan` can use the measured capacity.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from tollway import __version__
from tollway.bench.capacity import CapacityReport, TargetCapacity
from tollway.bench.runner import BenchResult, monotonic_reference

SCHEMA = "tollway.bench/v1"


class BenchFileError(ValueError):
    """A bench JSON file that cannot be used; the message names the file and the field."""


def report_dict(result: BenchResult, command: list[str] | None = None) -> dict[str, Any]:
    """The whole report as plain data (dataclasses are serialised by orjson as objects)."""
    config = result.config
    bounds = config.bounds
    return {
        "schema": SCHEMA,
        "provenance": {
            "tool": "tollway bench", "tool_version": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "machine": platform.machine(),
            "started_at": result.started_at.isoformat(), "finished_at": result.finished_at.isoformat(),
            "clock": monotonic_reference(), "command": command or [],
            "workload": {**config.workload.describe(), "fingerprint": config.workload.fingerprint()},
            "seed": config.workload.seed,
        },
        "config": {
            "levels": [{"mode": lv.mode, "value": lv.value, "arrivals": lv.arrivals if lv.mode == "rate" else None}
                       for lv in config.levels],
            "duration_s": bounds.duration_s, "requests": bounds.requests, "warmup_s": bounds.warmup_s,
            "warmup_requests": bounds.warmup_requests, "max_inflight": bounds.max_inflight,
            "timeout_s": config.timeout_s, "slo_ms": config.slo.as_ms(), "goodput_target": config.goodput_target,
            "rate_tolerance": config.rate_tolerance, "extra_body_keys": sorted(config.extra_body),
        },
        "targets": [{"name": r.target.name, "url": r.target.display_url, "model": r.target.model,
                     "exact_output": r.exact_output, "notes": r.notes} for r in result.results],
        "results": [summary for r in result.results for summary in r.levels],
        "capacity": result.capacity,
    }


def dumps(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def write_json(result: BenchResult, path: Path, command: list[str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(report_dict(result, command)))
    return path


def read_capacity(path: Path | str) -> CapacityReport:
    """The `capacity` section of a bench JSON file, for `tollway plan`.

    Raises BenchFileError naming the file and the missing or malformed field.
    """
    path = Path(path)
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise BenchFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise BenchFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BenchFileError(f"{path}: schema is {found!r}, expected {SCHEMA!r} (a `tollway bench` JSON file)")
    section = data.get("capacity")
    if not isinstance(section, dict) or not isinstance(section.get("targets"), dict):
        raise BenchFileError(f"{path}: field 'capacity.targets' is missing or not an object")
    names = {f.name for f in fields(TargetCapacity)}
    targets = {}
    for name, entry in section["targets"].items():
        if not isinstance(entry, dict) or not names <= set(entry):
            missing = sorted(names - set(entry)) if isinstance(entry, dict) else ["(not an object)"]
            raise BenchFileError(f"{path}: capacity.targets.{name} lacks {', '.join(missing)}")
        targets[name] = TargetCapacity(**{key: entry[key] for key in names})
    return CapacityReport(slo_ms=section.get("slo_ms") or {}, goodput_target=float(section.get("goodput_target", 0)),
                          rule=str(section.get("rule", "")), targets=targets)

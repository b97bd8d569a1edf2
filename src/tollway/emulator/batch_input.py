"""Reading an OpenAI-style batch input file the way the provider's validating step does.

A bad file does not fail the create call: the batch is accepted, sits in "validating", then turns
"failed" with `errors.data` naming the line (https://platform.openai.com/docs/guides/batch). Both
OpenAI and DashScope require every line to name the batch's endpoint, a unique custom_id and one model
for the whole file, within a line and size limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tollway.emulator.batch_store import Line


@dataclass(frozen=True)
class InputLimits:
    """One provider's limits on an input file."""

    max_lines: int
    max_bytes: int
    max_line_bytes: int | None = None


class InvalidInput(ValueError):
    """The file fails validation; `error` is the batch's errors.data entry."""

    def __init__(self, code: str, message: str, line: int | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message, "param": param, "line": line}


def parse_input(content: bytes, endpoint: str, limits: InputLimits) -> tuple[list[Line], str]:
    """The file's lines and its single model; raises InvalidInput naming the first bad line (1-based)."""
    if len(content) > limits.max_bytes:
        raise InvalidInput("file_too_large", f"The input file is {len(content)} bytes; the limit is "
                           f"{limits.max_bytes} bytes.")
    raw_lines = [raw for raw in content.split(b"\n") if raw.strip()]
    if not raw_lines:
        raise InvalidInput("empty_file", "The input file has no requests.")
    if len(raw_lines) > limits.max_lines:
        raise InvalidInput("too_many_requests", f"The input file has {len(raw_lines)} requests; the limit is "
                           f"{limits.max_lines}.")
    lines: list[Line] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(raw_lines, start=1):
        line = _line(raw, number, endpoint, limits)
        if line.custom_id in seen:
            raise InvalidInput("duplicate_custom_id", f"The custom_id {line.custom_id!r} on line {number} is "
                               "used by an earlier line; each must be unique.", number, "custom_id")
        seen.add(line.custom_id)
        models.add(line.body["model"])
        if len(models) > 1:
            raise InvalidInput("mismatched_model", f"Line {number} names model {line.body['model']!r}; every "
                               "request of a batch must use the same model.", number, "body.model")
        lines.append(line)
    return lines, models.pop()


def _line(raw: bytes, number: int, endpoint: str, limits: InputLimits) -> Line:
    if limits.max_line_bytes is not None and len(raw) > limits.max_line_bytes:
        raise InvalidInput("line_too_large", f"Line {number} is {len(raw)} bytes; the limit is "
                           f"{limits.max_line_bytes}.", number)
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("invalid_json_line", f"Line {number} is not valid JSON.", number) from None
    if not isinstance(parsed, dict):
        raise InvalidInput("invalid_json_line", f"Line {number} must be a JSON object.", number)
    custom_id, method, url, body = (parsed.get(k) for k in ("custom_id", "method", "url", "body"))
    if not isinstance(custom_id, str) or not custom_id:
        raise InvalidInput("missing_required_parameter", f"Line {number} has no custom_id.", number, "custom_id")
    if method != "POST":
        raise InvalidInput("invalid_method", f"Line {number}: method must be POST, got {method!r}.", number,
                           "method")
    if url != endpoint:
        raise InvalidInput("mismatched_endpoint", f"Line {number}: url {url!r} differs from the batch's "
                           f"endpoint {endpoint!r}.", number, "url")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise InvalidInput("missing_required_parameter", f"Line {number}: body must be an object with a model.",
                           number, "body.model")
    return Line(custom_id, url, body)

"""OpenAI's Batch API as a native batch upstream: a JSONL file of one deployment's lines, one upstream batch.

The share is uploaded with purpose "batch", a batch is created on it for the lines' endpoint, polled by
its status (already OpenAI's vocabulary, the NativeState one), and its output and error files are read
once it ends (https://platform.openai.com/docs/guides/batch). OpenAI takes one endpoint and one model
per batch, at most 50,000 requests and 200 MB a file, and a "24h" window only (the openai SDK's
BatchCreateParams), so the executor hands it one deployment's lines of one endpoint at a time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence, get_args

import aiohttp
import orjson

from tollway.batch.native.http import ProviderCalls
from tollway.batch.types import BatchLine, NativeResult, NativeState, NativeSubmission
from tollway.core.errors import GatewayError, bad_request

if TYPE_CHECKING:
    from tollway.routing.table import RoutedDeployment

NATIVE_STATES: frozenset[str] = frozenset(get_args(NativeState))
WINDOW = re.compile(r"^(\d+)([hd])$")
NOT_STREAMED = ("stream", "stream_options")  # a batch line is answered whole


def window_hours(window: str) -> int:
    """A completion window ("24h", "7d") in hours; a 400 naming the field when it is not one."""
    match = WINDOW.match(window)
    if match is None or int(match.group(1)) == 0:
        raise bad_request(f"completion_window {window!r} is not a duration such as '24h' or '7d'.",
                          "completion_window", "invalid_completion_window")
    return int(match.group(1)) * (24 if match.group(2) == "d" else 1)


def encode_input(lines: Sequence[BatchLine], upstream_model: str) -> bytes:
    """The JSONL input file: each line's body with the deployment's model name, never streamed."""
    rows = []
    for line in lines:
        body = {k: v for k, v in line.body.items() if k not in NOT_STREAMED}
        body["model"] = upstream_model
        rows.append(orjson.dumps({"custom_id": line.custom_id, "method": "POST", "url": line.endpoint, "body": body}))
    return b"\n".join(rows) + b"\n"


def parse_output(content: bytes) -> list[NativeResult]:
    """Output- and error-file lines as results: an HTTP answer per line, or why the line never ran."""
    results = []
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayError(502, "The provider's batch result file holds a line that is not JSON.",
                               "upstream_error", "batch_upstream_error") from None
        response, error = row.get("response"), row.get("error")
        if isinstance(response, dict):
            status, body = int(response.get("status_code") or 0), response.get("body")
            failure = None if status == 200 else line_error(body, status)
            results.append(NativeResult(row["custom_id"], status, body if isinstance(body, dict) else None, failure))
        else:
            failure = error if isinstance(error, dict) else {"code": "batch_line_failed", "message": "no answer"}
            results.append(NativeResult(row["custom_id"], 0, None, {"code": failure.get("code"),
                                                                     "message": failure.get("message")}))
    return results


def line_error(body: Any, status: int) -> dict[str, Any]:
    """{"code", "message"} of a failed line's error body (OpenAI's envelope)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return {"code": error.get("code") or error.get("type"), "message": error.get("message")}
    return {"code": f"http_{status}", "message": f"the provider answered {status}"}


class OpenAIBatchClient:
    """OpenAI's Files and Batch APIs for one deployment.

    A NativeResult with status_code 0 is a line the provider never ran (its error code says why:
    batch_cancelled, batch_expired); a line missing from the results was not reported at all.
    """

    dialect = "openai"
    endpoints: frozenset[str] = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                           "/v1/responses"})
    max_lines = 50_000
    max_bytes = 200 * 1024 * 1024
    max_line_bytes: int | None = None
    window_hours_range = (24, 24)   # the windows the provider takes; longer tollway windows are clamped

    def __init__(self, deployment: "RoutedDeployment", session: aiohttp.ClientSession) -> None:
        self.deployment = deployment
        self.calls = ProviderCalls(deployment, session)

    def upstream_window(self, window: str) -> str:
        """The provider window that ends inside tollway's: a shorter one cannot be promised (schedule those)."""
        shortest, longest = self.window_hours_range
        hours = window_hours(window)
        if hours < shortest:
            raise bad_request(f"completion_window {window!r} is shorter than the {shortest}h the provider "
                              f"{self.deployment.provider!r} takes to end a batch.", "completion_window",
                              "invalid_completion_window")
        return f"{min(hours, longest)}h"

    def ends_within_s(self, window: str) -> int:
        """The longest the provider may take to end a batch submitted for tollway's `window`."""
        return int(self.upstream_window(window)[:-1]) * 3600

    def check(self, lines: Sequence[BatchLine], content: bytes) -> str:
        """The share's one endpoint; a 400 when the share cannot be one upstream batch."""
        if not lines:
            raise bad_request("A native batch share needs at least one line.")
        endpoints = {line.endpoint for line in lines}
        if len(endpoints) > 1:
            raise bad_request(f"A native batch share must target one endpoint, got {sorted(endpoints)}; split "
                              "the lines by endpoint.", "endpoint")
        endpoint = endpoints.pop()
        if endpoint not in self.endpoints:
            raise bad_request(f"Provider {self.deployment.provider!r} has no batch support for {endpoint}.",
                              "url", "unsupported_endpoint")
        if len(lines) > self.max_lines or len(content) > self.max_bytes:
            raise bad_request(f"A share of {len(lines)} lines ({len(content)} bytes) exceeds the provider's "
                              f"{self.max_lines} lines or {self.max_bytes} bytes per batch; split it.")
        if self.max_line_bytes is not None:
            for line, raw in zip(lines, content.splitlines()):
                if len(raw) > self.max_line_bytes:
                    raise bad_request(f"Line {line.index + 1} ({line.custom_id!r}) is {len(raw)} bytes; the "
                                      f"provider takes at most {self.max_line_bytes} per line.", "body")
        return endpoint

    async def submit(self, lines: Sequence[BatchLine], upstream_model: str, window: str) -> NativeSubmission:
        content = encode_input(lines, upstream_model)
        endpoint = self.check(lines, content)
        upstream_window = self.upstream_window(window)
        uploaded = await self.calls.upload("files", content, "tollway-batch.jsonl", "batch")
        batch = await self.calls.json("POST", "batches", {
            "input_file_id": _id(uploaded, "file"), "endpoint": endpoint, "completion_window": upstream_window})
        return NativeSubmission(_id(batch, "batch"), uploaded["id"], {"endpoint": endpoint, "lines": len(lines)})

    async def state(self, submission: NativeSubmission) -> NativeState:
        status = (await self._batch(submission)).get("status")
        if status not in NATIVE_STATES:
            raise GatewayError(502, f"Deployment '{self.deployment.name}' reported batch status {status!r}, "
                               "which tollway does not know.", "upstream_error", "batch_upstream_error")
        return status  # checked against NativeState's values above

    async def results(self, submission: NativeSubmission) -> list[NativeResult]:
        batch = await self._batch(submission)
        results: list[NativeResult] = []
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                results += parse_output(await self.calls.download(f"files/{batch[key]}/content"))
        return results

    async def cancel(self, submission: NativeSubmission) -> None:
        await self.calls.json("POST", f"batches/{submission.upstream_batch_id}/cancel")

    async def _batch(self, submission: NativeSubmission) -> dict[str, Any]:
        return await self.calls.json("GET", f"batches/{submission.upstream_batch_id}")


def _id(answer: dict[str, Any], what: str) -> str:
    found = answer.get("id")
    if not isinstance(found, str) or not found:
        raise GatewayError(502, f"The provider's {what} answer carries no id.", "upstream_error",
                           "batch_upstream_error")
    return found

"""Anthropic's Message Batches as a native batch upstream: the lines inline, results from results_url.

POST /v1/messages/batches takes [{custom_id, params}] (params: a Messages request), the batch is polled
by processing_status (in_progress, canceling, ended) and, once ended, its results_url gives one JSON
line per request whose result.type is succeeded, errored, canceled or expired
(https://docs.anthropic.com/en/api/creating-message-batches). A batch holds at most 100,000 requests
or 256 MB and ends within 24 hours. Chat Completions lines are translated to Messages requests by the
anthropic dialect's own transform; a custom_id Anthropic would refuse (it allows ^[a-zA-Z0-9_-]{1,64}$)
is sent as a stand-in id and mapped back, so a client's ids need not follow Anthropic's rule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import aiohttp
import orjson

from tollway.batch.native.http import ProviderCalls
from tollway.batch.native.openai import window_hours
from tollway.batch.types import BatchLine, NativeResult, NativeState, NativeSubmission
from tollway.core.errors import GatewayError, bad_request
from tollway.providers.dialect import UntranslatableRequest

if TYPE_CHECKING:
    from tollway.routing.table import RoutedDeployment

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# an errored line's error.type -> the HTTP status the Messages API answers it with
# (https://docs.anthropic.com/en/api/errors)
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
NOT_RUN = {"canceled": ("batch_cancelled", "The batch was cancelled before this line ran."),
           "expired": ("batch_expired", "The batch reached its 24-hour limit before this line ran.")}


class AnthropicBatchClient:
    """Anthropic's Message Batches API for one deployment (result bodies stay Messages responses)."""

    dialect = "anthropic"
    endpoints: frozenset[str] = frozenset({"/v1/messages", "/v1/chat/completions"})
    max_lines = 100_000
    max_bytes = 256 * 1024 * 1024
    window_hours_range = (24, 24)

    def __init__(self, deployment: "RoutedDeployment", session: aiohttp.ClientSession) -> None:
        self.deployment = deployment
        self.calls = ProviderCalls(deployment, session)

    def ends_within_s(self, window: str) -> int:
        """Anthropic ends every batch within 24 hours; a shorter tollway window cannot be promised."""
        if window_hours(window) < 24:
            raise bad_request(f"completion_window {window!r} is shorter than the 24h Anthropic takes to end a "
                              "batch.", "completion_window", "invalid_completion_window")
        return 24 * 3600

    async def submit(self, lines: Sequence[BatchLine], upstream_model: str, window: str) -> NativeSubmission:
        self.ends_within_s(window)
        if not lines:
            raise bad_request("A native batch share needs at least one line.")
        requests, renamed = [], {}
        taken = {line.custom_id for line in lines if CUSTOM_ID.match(line.custom_id)}
        for line in lines:
            upstream_id = line.custom_id
            if not CUSTOM_ID.match(upstream_id):
                upstream_id = f"tollway-line-{line.index}"
                while upstream_id in taken:
                    upstream_id += "x"
                taken.add(upstream_id)
                renamed[upstream_id] = line.custom_id
            requests.append({"custom_id": upstream_id, "params": self._params(line, upstream_model)})
        payload = orjson.dumps({"requests": requests})
        if len(lines) > self.max_lines or len(payload) > self.max_bytes:
            raise bad_request(f"A share of {len(lines)} lines ({len(payload)} bytes) exceeds Anthropic's "
                              f"{self.max_lines} requests or {self.max_bytes} bytes per batch; split it.")
        batch = await self.calls.json("POST", "messages/batches", {"requests": requests})
        batch_id = batch.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise GatewayError(502, "Anthropic's batch answer carries no id.", "upstream_error", "batch_upstream_error")
        return NativeSubmission(batch_id, None, {"renamed": renamed} if renamed else {})

    def _params(self, line: BatchLine, upstream_model: str) -> dict[str, Any]:
        """The line as a Messages request for this deployment's model, never streamed."""
        body = {k: v for k, v in line.body.items() if k not in ("stream", "stream_options")}
        body["model"] = upstream_model
        if line.endpoint == "/v1/messages":
            return body
        if line.endpoint != "/v1/chat/completions":
            raise bad_request(f"Line {line.index + 1} ({line.custom_id!r}): Anthropic has no batch support for "
                              f"{line.endpoint}.", "url", "unsupported_endpoint")
        transforms = self.deployment.dialect.transforms
        try:
            params = orjson.loads(transforms.request("chat", orjson.dumps(body), self.deployment.max_output))
        except UntranslatableRequest as exc:
            raise bad_request(f"Line {line.index + 1} ({line.custom_id!r}): {exc}", "body") from None
        params.pop("stream", None)
        return params

    async def state(self, submission: NativeSubmission) -> NativeState:
        return batch_state(await self._batch(submission))

    async def results(self, submission: NativeSubmission) -> list[NativeResult]:
        batch = await self._batch(submission)
        url = batch.get("results_url")
        if not isinstance(url, str) or not url:
            return []
        renamed = submission.extra.get("renamed", {})
        return [result_of(row, renamed) for row in _rows(await self.calls.download(url))]

    async def cancel(self, submission: NativeSubmission) -> None:
        await self.calls.json("POST", f"messages/batches/{submission.upstream_batch_id}/cancel")

    async def _batch(self, submission: NativeSubmission) -> dict[str, Any]:
        return await self.calls.json("GET", f"messages/batches/{submission.upstream_batch_id}")


def batch_state(batch: dict[str, Any]) -> NativeState:
    """Anthropic's processing_status in OpenAI's words: an ended batch is cancelled if a cancel began,
    expired if lines expired, else completed."""
    status = batch.get("processing_status")
    if status == "in_progress":
        return "in_progress"
    if status == "canceling":
        return "cancelling"
    if status != "ended":
        raise GatewayError(502, f"Anthropic reported batch status {status!r}, which tollway does not know.",
                           "upstream_error", "batch_upstream_error")
    if batch.get("cancel_initiated_at"):
        return "cancelled"
    counts = batch.get("request_counts") or {}
    return "expired" if counts.get("expired") else "completed"


def result_of(row: dict[str, Any], renamed: dict[str, str]) -> NativeResult:
    """One results line: a message (200), an error with the status Anthropic gives its type, or a line
    that never ran (status 0, code batch_cancelled or batch_expired)."""
    custom_id = renamed.get(row.get("custom_id", ""), row.get("custom_id", ""))
    result = row.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return NativeResult(custom_id, 200, result.get("message"))
    if kind == "errored":
        envelope = result.get("error") or {}
        inner = envelope.get("error")
        error: dict = inner if isinstance(inner, dict) else envelope
        error_type = str(error.get("type") or "api_error")
        return NativeResult(custom_id, ERROR_STATUS.get(error_type, 500), envelope,
                            {"code": error_type, "message": error.get("message")})
    code, message = NOT_RUN.get(str(kind), ("batch_line_failed", f"Anthropic reported result type {kind!r}."))
    return NativeResult(custom_id, 0, None, {"code": code, "message": message})


def _rows(content: bytes) -> list[dict[str, Any]]:
    rows = []
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayError(502, "Anthropic's batch results hold a line that is not JSON.", "upstream_error",
                               "batch_upstream_error") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows

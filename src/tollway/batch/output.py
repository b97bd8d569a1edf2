"""What a client reads back: the batch object, and the output and error files, in OpenAI's shapes (and
Anthropic's Message Batches shapes for batches created through /v1/messages/batches).

The batch object carries tollway's exact figures beside OpenAI's fields: `cost_usd` (the sum of the
lines' ledger costs, exact decimal text), `expected_cost_usd` (the plan's forecast) and `worst_case_usd`
(what it held against budgets). An output file line is OpenAI's
`{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null}`; a line that got
an error answer, or none (cancelled, expired, interrupted), goes to the error file with `error` set.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from tollway.core.money import decimal_text

if TYPE_CHECKING:
    from tollway.batch.store import BatchRecord, LineState


def openai_batch(record: "BatchRecord") -> dict[str, Any]:
    return {
        "id": record.id, "object": "batch", "endpoint": record.endpoint, "errors": None,
        "input_file_id": record.input_file_id, "completion_window": record.completion_window,
        "status": record.status, "output_file_id": record.output_file_id, "error_file_id": record.error_file_id,
        "created_at": record.created_at, "in_progress_at": record.in_progress_at, "expires_at": record.deadline,
        "finalizing_at": record.finalizing_at, "completed_at": record.completed_at, "failed_at": record.failed_at,
        "expired_at": record.expired_at, "cancelling_at": record.cancelling_at, "cancelled_at": record.cancelled_at,
        "request_counts": {"total": record.total, "completed": record.completed, "failed": record.failed},
        "metadata": record.metadata or None,
        "cost_usd": decimal_text(record.cost_usd), "expected_cost_usd": record.expected_cost_usd,
        "worst_case_usd": record.worst_case_usd,
    }


def result_files(record: "BatchRecord", states: list["LineState"]) -> tuple[bytes, bytes]:
    """(output file, error file) as JSONL, in input order; b"" for a file with no lines."""
    output, errors = [], []
    for state in states:
        response = None
        if state.status_code:
            response = {"status_code": state.status_code, "request_id": state.request_id,
                        "body": state.response if state.response is not None else {"error": state.error}}
        line = {"id": f"batch_req_{state.request_id}", "custom_id": state.custom_id, "response": response,
                "error": None}
        if state.state == "done":
            output.append(orjson.dumps(line))
        else:
            line["error"] = state.error or {"code": state.state, "message": f"The line ended {state.state}."}
            errors.append(orjson.dumps(line))
    return _jsonl(output), _jsonl(errors)


def _jsonl(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n" if lines else b""


# -- Anthropic's Message Batches ------------------------------------------------------------------------

def anthropic_batch(record: "BatchRecord", base_url: str) -> dict[str, Any]:
    states = record.states
    ended = record.status in ("completed", "cancelled", "expired", "failed")
    ended_at = record.completed_at or record.cancelled_at or record.expired_at or record.failed_at
    return {
        "id": record.id, "type": "message_batch",
        "processing_status": "ended" if ended else ("canceling" if record.status == "cancelling" else "in_progress"),
        "request_counts": {"processing": states.get("pending", 0) + states.get("running", 0),
                           "succeeded": states.get("done", 0), "errored": states.get("failed", 0),
                           "canceled": states.get("cancelled", 0), "expired": states.get("expired", 0)},
        "ended_at": _rfc3339(ended_at) if ended else None, "created_at": _rfc3339(record.created_at),
        "expires_at": _rfc3339(record.deadline), "archived_at": None,
        "cancel_initiated_at": _rfc3339(record.cancelling_at) if record.cancelling_at else None,
        "results_url": f"{base_url}/v1/messages/batches/{record.id}/results" if ended else None,
        "cost_usd": decimal_text(record.cost_usd),
    }


def anthropic_results(states: list["LineState"]) -> bytes:
    lines = []
    for state in states:
        if state.state == "done":
            result: dict[str, Any] = {"type": "succeeded", "message": state.response}
        elif state.state == "cancelled":
            result = {"type": "canceled"}
        elif state.state == "expired":
            result = {"type": "expired"}
        else:
            body = state.response if isinstance(state.response, dict) and state.response.get("type") == "error" \
                else {"type": "error", "error": {"type": "api_error" if state.status_code >= 500 else
                                                 "invalid_request_error",
                                                 "message": (state.error or {}).get("message", "failed")}}
            result = {"type": "errored", "error": body}
        lines.append(orjson.dumps({"custom_id": state.custom_id, "result": result}))
    return _jsonl(lines)


def _rfc3339(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


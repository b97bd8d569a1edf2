"""Reading a batch input file: every line checked before anything is created.

Each line is OpenAI's batch request object, `{"custom_id", "method": "POST", "url", "body"}`. A file is
refused whole, with a 400 naming the first bad line (1-based, as an editor shows it) and its field, for a
line that is not JSON or not that object, a url tollway does not batch, lines for different urls, a model
the gateway does not serve, a repeated custom_id, or a file over the size or line limit. Nothing is kept
for a refused file or batch, so a client fixes the line and sends again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tollway.batch.types import BATCH_ENDPOINTS, BatchLine
from tollway.core.errors import GatewayError, bad_request
from tollway.core.request import ClientRequest, parse_request

if TYPE_CHECKING:
    from tollway.accounting.admission import Admission
    from tollway.routing.table import RouteTable

#: A batch line's url -> the endpoint name a request's life (gateway/handler.py) and the ledger use.
ENDPOINT_NAMES = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings",
                  "/v1/messages": "messages", "/v1/responses": "responses"}
_CANONICAL = ("chat", "completions", "embeddings")  # checked as the live endpoint checks them
MAX_CUSTOM_ID = 512


def line_error(number: int, field: str, message: str, code: str = "invalid_batch_line") -> GatewayError:
    """A 400 naming the line (1-based) and its field, as `param` and in the message."""
    param = f"line[{number}]" + (f".{field}" if field else "")
    return bad_request(f"Line {number} of the input file: {message}", param, code)


def check_size(content: bytes, max_bytes: int, max_lines: int) -> None:
    if len(content) > max_bytes:
        raise bad_request(f"The file is {len(content)} bytes; a batch input file may be at most {max_bytes} bytes "
                          "(batch.max_file_bytes). Split it into several batches.", "file", "file_too_large")
    lines = sum(1 for raw in content.splitlines() if raw.strip())
    if lines > max_lines:
        raise bad_request(f"The file has {lines} requests; a batch may hold at most {max_lines} "
                          "(batch.max_lines). Split it into several batches.", "file", "too_many_lines")
    if lines == 0:
        raise bad_request("The file holds no requests: a batch input file has one JSON request per line.", "file",
                          "empty_file")


def parse_lines(content: bytes, max_bytes: int, max_lines: int) -> list[BatchLine]:
    """Every line's shape checked (not yet its model: the file may be uploaded before the batch names it)."""
    check_size(content, max_bytes, max_lines)
    lines: list[BatchLine] = []
    seen: dict[str, int] = {}
    url0 = None
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        line = _one_line(number, raw)
        if url0 is None:
            url0 = line.endpoint
        elif line.endpoint != url0:
            raise line_error(number, "url", f"url {line.endpoint!r} differs from the first line's {url0!r}: one "
                             "batch targets one endpoint.", "mixed_endpoints")
        first = seen.get(line.custom_id)
        if first is not None:
            raise line_error(number, "custom_id", f"custom_id {line.custom_id!r} repeats line {first}; each "
                             "line needs its own custom_id to match its result.", "duplicate_custom_id")
        seen[line.custom_id] = number
        lines.append(line)
    return lines


def check_models(lines: list[BatchLine], table: "RouteTable") -> None:
    """Every line names a model (a route group) this gateway serves."""
    for line in lines:
        if table.group_for(line.model) is None:
            known = ", ".join(table.public_names()[:20])
            raise line_error(line_number(line), "body.model", f"the model {line.model!r} does not exist on this "
                             f"gateway. Available models: {known}.", "model_not_found")


def line_number(line: BatchLine) -> int:
    """The 1-based line of the file, as an editor shows it (a line's index is its 0-based position)."""
    return line.index + 1


def _one_line(number: int, raw: bytes) -> BatchLine:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise line_error(number, "", f"not valid JSON ({exc}).", "invalid_json") from None
    if not isinstance(item, dict):
        raise line_error(number, "", "each line must be a JSON object with custom_id, method, url and body.")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        raise line_error(number, "custom_id", f"'custom_id' must be a non-empty string of at most {MAX_CUSTOM_ID} "
                         "characters.")
    method = item.get("method", "POST")
    if method != "POST":
        raise line_error(number, "method", f"'method' must be \"POST\" (got {method!r}).")
    url = item.get("url")
    if url not in BATCH_ENDPOINTS:
        raise line_error(number, "url", f"url {url!r} is not an endpoint tollway batches; use one of "
                         f"{', '.join(BATCH_ENDPOINTS)}.", "unsupported_endpoint")
    body = item.get("body")
    if not isinstance(body, dict):
        raise line_error(number, "body", "'body' must be a JSON object: the request for the url.")
    _check_body(number, ENDPOINT_NAMES[url], body)
    return BatchLine(number - 1, custom_id, url, body["model"], body)


def _check_body(number: int, endpoint: str, body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise line_error(number, "body.model", "'model' is required and must be a non-empty string.")
    if body.get("stream"):
        raise line_error(number, "body.stream", "a batch line cannot stream: remove 'stream' or set it false.")
    if endpoint in _CANONICAL:
        try:
            parse_request(endpoint, orjson.dumps(body))
        except GatewayError as exc:
            field = f"body.{exc.param}" if exc.param else "body"
            raise line_error(number, field, exc.message) from None


def line_request(line: BatchLine) -> ClientRequest:
    """The line as the canonical request admission sizes its hold by (the Messages and Responses bodies
    carry their max_tokens / max_output_tokens, which bound the completion the same way)."""
    raw = orjson.dumps(line.body)
    endpoint = ENDPOINT_NAMES[line.endpoint]
    if endpoint in _CANONICAL:
        return parse_request(endpoint, raw)
    body = dict(line.body)
    if "max_output_tokens" in body and "max_tokens" not in body:
        body["max_tokens"] = body["max_output_tokens"]
    # a Messages body reads as a chat (its messages), a Responses body by its `input`; the hold counts the
    # whole body's bytes either way
    shape = "chat" if isinstance(body.get("messages"), list) else "responses"
    return ClientRequest(shape, body, line.model, False, False, len(raw))


def line_hold_nano(admission: "Admission", table: "RouteTable", line: BatchLine) -> int:
    """What the line holds against budgets when sent: admission's own hold for it as a live request."""
    group = table.group_for(line.model)
    if group is None:
        return 0
    return admission.holds.hold(line_request(line), group.name).nano

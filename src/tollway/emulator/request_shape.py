"""What the emulator needs from a request body: model, prompt size, output limit, streaming options.

Each endpoint reads different fields (OpenAI chat `messages` + `max_completion_tokens`, legacy `prompt`,
Anthropic `system` + required `max_tokens`), and a malformed body must get the dialect's 400 naming the
field, as the real servers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollway.emulator.tokens import TOKENS_PER_MESSAGE, content_tokens, messages_tokens, prompt_tokens, text_tokens


class InvalidRequest(ValueError):
    """The body cannot be served; the message names the field and what is wrong."""


@dataclass(frozen=True)
class RequestShape:
    model: str
    prompt_tokens: int
    limit: int | None  # max output tokens asked for (None = no limit given)
    force_limit: bool  # min_tokens >= limit or ignore_eos: produce exactly `limit` tokens
    stream: bool
    stream_options: Any = None


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string")
    return model


def _positive_int(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{name}' must be a positive integer, got {value!r}")
    return value


def _limit(body: dict) -> tuple[int | None, bool]:
    limit = _positive_int(body, "max_completion_tokens")
    if limit is None:
        limit = _positive_int(body, "max_tokens")
    min_tokens = body.get("min_tokens")
    force = limit is not None and (body.get("ignore_eos") is True or
                                   (isinstance(min_tokens, int) and min_tokens >= limit))
    return limit, force


def _stream(body: dict) -> bool:
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest(f"'stream' must be a boolean, got {stream!r}")
    return bool(stream)


def chat_shape(body: dict) -> RequestShape:
    """POST /v1/chat/completions."""
    model = _model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise InvalidRequest(f"'messages[{index}]' must be an object with a 'role'")
    limit, force = _limit(body)
    return RequestShape(model, messages_tokens(messages), limit, force, _stream(body), body.get("stream_options"))


def completions_shape(body: dict) -> RequestShape:
    """POST /v1/completions (legacy text completions)."""
    model = _model(body)
    if "prompt" not in body or not isinstance(body["prompt"], (str, list)):
        raise InvalidRequest("'prompt' is required and must be a string or an array")
    limit, force = _limit(body)
    return RequestShape(model, prompt_tokens(body["prompt"]), limit, force, _stream(body), body.get("stream_options"))


def messages_shape(body: dict) -> RequestShape:
    """POST /v1/messages (Anthropic): max_tokens is required there."""
    model = _model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: Field required (a non-empty array)")
    if body.get("max_tokens") is None:
        raise InvalidRequest("max_tokens: Field required")
    limit = _positive_int(body, "max_tokens")
    return RequestShape(model, messages_tokens(messages, body.get("system")), limit, False, _stream(body))


def generate_shape(body: dict) -> RequestShape:
    """POST models/{model}:generateContent (Gemini); the server puts the URL's model and method in
    `_url_model` / `_url_stream`. contents: roles user/model, each with parts."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified")
    config = body.get("generationConfig") or {}
    limit = config.get("maxOutputTokens") if isinstance(config, dict) else None
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidRequest(f"* GenerateContentRequest.generation_config.max_output_tokens: {limit!r} is invalid")
    system = (body.get("systemInstruction") or {}).get("parts")
    turns = [{"content": c.get("parts")} for c in contents if isinstance(c, dict)]
    return RequestShape(body["_url_model"], messages_tokens(turns, system), limit, False, bool(body["_url_stream"]))


def responses_shape(body: dict) -> RequestShape:
    """POST /v1/responses: `input` is a string or a list of items; `instructions` counts as a system turn."""
    model = _model(body)
    given = body.get("input")
    if not isinstance(given, (str, list)) or given in ("", []):
        raise InvalidRequest("'input' is required and must be a non-empty string or array of items")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest(f"'instructions' must be a string, got {instructions!r}")
    limit = _positive_int(body, "max_output_tokens")
    return RequestShape(model, input_tokens(given, instructions), limit, False, _stream(body))


def input_tokens(given: str | list, instructions: str | None) -> int:
    """Per item ceil(chars/4) + 4, as chat messages are counted: text parts, tool outputs and call arguments."""
    total = text_tokens(instructions) + TOKENS_PER_MESSAGE if instructions else 0
    items = [given] if isinstance(given, str) else given
    for item in items:
        if isinstance(item, str):
            total += text_tokens(item) + TOKENS_PER_MESSAGE
        elif isinstance(item, dict):
            text = item.get("content", item.get("output", item.get("arguments")))
            total += content_tokens(text) + TOKENS_PER_MESSAGE
    return total


def embeddings_shape(body: dict) -> RequestShape:
    """POST /v1/embeddings."""
    model = _model(body)
    given = body.get("input")
    if not isinstance(given, (str, list)) or given in ("", []):
        raise InvalidRequest("'input' is required and must be a non-empty string or array")
    _positive_int(body, "dimensions")
    encoding_format = body.get("encoding_format")
    if encoding_format not in (None, "float", "base64"):
        raise InvalidRequest(f"'encoding_format' must be 'float' or 'base64', got {encoding_format!r}")
    return RequestShape(model, prompt_tokens(given), None, False, False)


def embedding_inputs(body: dict) -> list[Any]:
    """The inputs to embed, one vector each: a string, a list of strings, or token-id lists."""
    given = body["input"]
    if isinstance(given, str):
        return [given]
    if given and all(isinstance(item, int) for item in given):
        return [given]
    return list(given)

"""An Anthropic Messages request body as tollway's canonical request (a Chat Completions body).

Messages and Chat Completions differ in shape, not meaning, for what is translated here: the top-level
`system` becomes a system message, `tool_result` blocks become `tool` messages (placed before the rest of
their user turn, where Chat Completions wants them), `tool_use` blocks become `tool_calls`, images become
`image_url` parts (base64 as a data: URL), `stop_sequences` becomes `stop`, `metadata.user_id` becomes
`user`, and `thinking` (with signed thinking blocks handed back in `thinking_blocks`) is kept for an
Anthropic upstream, whose translation reads both. `cache_control` stays on the parts it marks.
What tollway cannot serve (server tools such as web_search, `container`, `mcp_servers`, document
blocks) is a 400 naming it, never dropped.
Source: https://docs.anthropic.com/en/api/messages (retrieved 2026-12-06).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.core.errors import GatewayError, bad_request
from tollway.core.request import ClientRequest, json_object, parse_request

# Fields of the Messages API tollway passes on in the canonical body under the same name.
_COPIED = ("temperature", "top_p", "top_k", "stream", "thinking")
# Accepted and not applied, each for a stated reason (docs/gateway.md lists them): context_management asks
# the server to clear old tool results once a context grows past a trigger; tollway forwards the whole
# context instead, which the model answers the same way (Claude Code sends it on every request).
_NOT_APPLIED = frozenset({"context_management"})
_HANDLED = frozenset({"model", "messages", "system", "max_tokens", "stop_sequences", "metadata", "tools",
                      "tool_choice", "output_config", *_COPIED, *_NOT_APPLIED})
_EFFORTS = frozenset({"low", "medium", "high", "max"})
_UNSUPPORTED = {"container": "code-execution containers", "mcp_servers": "the MCP connector"}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def unsupported(what: str, param: str) -> GatewayError:
    return GatewayError(400, f"{what} is not supported by this gateway: tollway serves the Messages API by "
                             "translating it, and cannot run this feature.", "invalid_request_error",
                        "unsupported_feature", param)


def canonical_request(raw: bytes, needs_max_tokens: bool = True) -> ClientRequest:
    """Check a Messages body and turn it into the canonical ClientRequest (endpoint "chat");
    count_tokens takes a body without max_tokens."""
    body = json_object(raw)
    chat = chat_body(body, needs_max_tokens)
    creq = parse_request("chat", orjson.dumps(chat))  # the chat checks (numbers, depth) once more
    creq.raw_size = len(raw)
    creq.client_wants_usage = True  # the stream translation needs the final usage for message_delta
    if needs_max_tokens:
        creq.dialect_state = body  # the client's own body, for an Anthropic upstream (the fast path, native.py)
    return creq


def chat_body(body: dict[str, Any], needs_max_tokens: bool = True) -> dict[str, Any]:
    """The Chat Completions body for a Messages body; GatewayError(400) naming the field otherwise."""
    for name in body:
        if name in _UNSUPPORTED:
            raise unsupported(f"'{name}' ({_UNSUPPORTED[name]})", name)
        if name not in _HANDLED:
            raise bad_request(f"'{name}' is not a Messages API parameter tollway knows; remove it.", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: Field required (a non-empty string).", "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None and needs_max_tokens:
        raise bad_request("max_tokens: Field required.", "max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise bad_request(f"max_tokens: must be a positive integer, got {max_tokens!r:.40}.", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: Field required (a non-empty array).", "messages")
    chat: dict[str, Any] = {"model": model, "messages": [*_system(body.get("system")), *_turns(messages)]}
    if max_tokens is not None:
        chat["max_tokens"] = max_tokens
    for name in _COPIED:
        if body.get(name) is not None:
            chat[name] = body[name]
    temperature = chat.get("temperature")
    if temperature is not None and type(temperature) in (int, float) and not 0 <= temperature <= 1:
        raise bad_request(f"temperature: must be from 0 to 1, got {temperature!r}.", "temperature")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise bad_request("stop_sequences: must be an array of strings.", "stop_sequences")
        if stops:
            chat["stop"] = stops
    _metadata(body.get("metadata"), chat)
    _output_config(body.get("output_config"), chat)
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], chat)
    return chat


def _metadata(metadata: Any, chat: dict[str, Any]) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise bad_request("metadata: must be an object.", "metadata")
    for name, value in metadata.items():
        if name != "user_id":
            raise bad_request(f"metadata.{name}: unknown field (metadata takes user_id).", f"metadata.{name}")
        if value is not None:
            if not isinstance(value, str):
                raise bad_request("metadata.user_id: must be a string.", "metadata.user_id")
            chat["user"] = value


def _output_config(config: Any, chat: dict[str, Any]) -> None:
    """`effort` becomes reasoning_effort ("max" as "high", the most Chat Completions names); `format`
    (a JSON schema the answer must satisfy) becomes a json_schema response_format."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise bad_request("output_config: must be an object.", "output_config")
    for name, value in config.items():
        if name == "effort":
            if value not in _EFFORTS:
                raise bad_request(f"output_config.effort: must be one of {', '.join(sorted(_EFFORTS))}.",
                                  "output_config.effort")
            chat["reasoning_effort"] = "high" if value == "max" else value
        elif name == "format":
            if not isinstance(value, dict) or value.get("type") != "json_schema" or not isinstance(
                    value.get("schema"), dict):
                raise bad_request("output_config.format: must be {type: json_schema, schema: {...}}.",
                                  "output_config.format")
            chat["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": value["schema"], "strict": True}}
        elif value is not None:
            raise bad_request(f"output_config.{name}: unknown field (output_config takes effort and format).",
                              f"output_config.{name}")


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise bad_request("system: must be a string or an array of text blocks.", "system")
    parts = [_text_part(block, f"system[{i}]") for i, block in enumerate(system)]
    if not parts:
        return []
    if any("cache_control" in p for p in parts):
        return [{"role": "system", "content": parts}]
    return [{"role": "system", "content": "".join(p["text"] for p in parts)}]


def _text_part(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise bad_request(f"{where}: must be a text block ({{\"type\": \"text\", \"text\": ...}}).", where)
    part: dict[str, Any] = {"type": "text", "text": block["text"]}
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _turns(messages: list) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where}: must be an object with 'role' and 'content'.", where)
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise bad_request(f"{where}.role: must be 'user', 'assistant' or 'system', got {role!r:.40}.",
                              f"{where}.role")
        content = message.get("content")
        if role == "system":  # a system turn among the messages (Claude Code sends them): text only
            out.extend(_system(content if content is not None else ""))
            continue
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise bad_request(f"{where}.content: must be a string or an array of content blocks.",
                              f"{where}.content")
        out.extend(_user_turn(content, where) if role == "user" else [_assistant_turn(content, where)])
    return out


def _user_turn(blocks: list, where: str) -> list[dict[str, Any]]:
    """tool messages first (answers to the previous turn's calls), then the user's own parts."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(_text_part(block, at))
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "tool_result":
            results.append(_tool_result(block, at))
        else:
            raise _block_refused(kind, at, "text, image and tool_result")
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _assistant_turn(blocks: list, where: str) -> dict[str, Any]:
    text: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    thoughts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(_text_part(block, at))
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise bad_request(f"{at}: a tool_use block needs a string id and name.", at)
            tool_input = block.get("input", {})
            if not isinstance(tool_input, dict):
                raise bad_request(f"{at}.input: must be an object.", f"{at}.input")
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": orjson.dumps(tool_input).decode()}})
        elif kind in ("thinking", "redacted_thinking"):
            thoughts.append(dict(block))
        else:
            raise _block_refused(kind, at, "text, tool_use, thinking and redacted_thinking")
    turn: dict[str, Any] = {"role": "assistant"}
    if any("cache_control" in p for p in text):
        turn["content"] = text
    else:
        turn["content"] = "".join(p["text"] for p in text) if text or not calls else None
    if calls:
        turn["tool_calls"] = calls
    if thoughts:
        turn["thinking_blocks"] = thoughts
    return turn


def _block_refused(kind: Any, at: str, allowed: str) -> GatewayError:
    if kind in ("document", "search_result", "server_tool_use", "web_search_tool_result", "container_upload",
                "mcp_tool_use", "mcp_tool_result"):
        return unsupported(f"a {kind!r} content block", at)
    return bad_request(f"{at}: a content block of type {kind!r:.40} is not valid here ({allowed} are).", at)


def _image(block: dict, at: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad_request(f"{at}.source: required (base64 or url).", f"{at}.source")
    if source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if media not in _IMAGE_TYPES or not isinstance(data, str):
            raise bad_request(f"{at}.source: a base64 image needs media_type (one of "
                              f"{', '.join(sorted(_IMAGE_TYPES))}) and data.", f"{at}.source")
        url = f"data:{media};base64,{data}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise bad_request(f"{at}.source.type: must be 'base64' or 'url' (with its url).", f"{at}.source.type")
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _tool_result(block: dict, at: str) -> dict[str, Any]:
    if not isinstance(block.get("tool_use_id"), str):
        raise bad_request(f"{at}.tool_use_id: required (a string).", f"{at}.tool_use_id")
    content = block.get("content", "")
    if isinstance(content, list):
        content = "".join(_text_part(b, f"{at}.content[{k}]")["text"] for k, b in enumerate(content))
    elif not isinstance(content, str):
        raise bad_request(f"{at}.content: must be a string or an array of text blocks.", f"{at}.content")
    if block.get("is_error"):
        content = f"[tool error] {content}"
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise bad_request("tools: must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        at = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise bad_request(f"{at}: must be an object.", at)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise unsupported(f"the server tool {kind!r:.60} ({at})", at)
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad_request(f"{at}.name: required (a non-empty string).", f"{at}.name")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise bad_request(f"{at}.input_schema: required (a JSON Schema object).", f"{at}.input_schema")
        function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        entry: dict[str, Any] = {"type": "function", "function": function}
        if tool.get("cache_control") is not None:
            entry["cache_control"] = tool["cache_control"]
        # defer_loading (tool search) is not applied: the tool is offered from the start, as without it
        out.append(entry)
    return out


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise bad_request("tool_choice: must be {type: auto|any|none} or {type: tool, name}.", "tool_choice")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False

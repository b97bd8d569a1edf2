"""An OpenAI Responses request body as tollway's canonical request (a Chat Completions body).

`instructions` becomes a system message; input items become chat messages: a `message` item (or a bare
`{role, content}`) a message with text and image parts, a `function_call` an assistant tool call, a
`function_call_output` a tool message. `max_output_tokens` becomes `max_tokens`, `text.format` a
response_format, `reasoning.effort` reasoning_effort, function tools chat tools. `previous_response_id`
is kept on the request (a ResponsesTurn) for the dialect to prepend the stored conversation once the key
is known; `conversation` objects are refused with a 400 saying so, as are built-in tools (web search,
file search, code interpreter ...), which tollway cannot run. A `reasoning` item handed back
is accepted and not applied (its text is the model's own earlier reasoning; chat upstreams take none).
Source: https://platform.openai.com/docs/api-reference/responses/create (retrieved 2026-12-06).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tollway.core.errors import GatewayError, bad_request
from tollway.core.request import ClientRequest, json_object, parse_request

_COPIED = {"temperature": "temperature", "top_p": "top_p", "stream": "stream", "user": "user",
           "parallel_tool_calls": "parallel_tool_calls", "max_output_tokens": "max_tokens"}
# accepted and not applied upstream: store and previous_response_id (the dialect's, see ResponsesTurn),
# metadata and client_metadata (Codex CLI's session ids), truncation "disabled" (the default), include
_NOT_APPLIED = frozenset({"store", "previous_response_id", "metadata", "client_metadata", "truncation", "include",
                          "service_tier", "prompt_cache_key", "safety_identifier"})
_HANDLED = frozenset({"model", "input", "instructions", "tools", "tool_choice", "text", "reasoning",
                      *_COPIED, *_NOT_APPLIED})
# the chat field a client's field became, back to the client's name when the chat request is refused
_CLIENT_NAMES = {target: name for name, target in _COPIED.items() if target != name}
# `include` values that ask for output translation cannot give: refused, never silently dropped
_UNSERVED_INCLUDES = {"message.output_text.logprobs": "the output text's log probabilities"}
_UNSUPPORTED = {"conversation": "a stored conversation object (use previous_response_id or send the whole input)",
                "background": "background responses", "prompt": "stored prompt templates"}


def unsupported(what: str, param: str) -> GatewayError:
    return GatewayError(400, f"{what} is not supported by this gateway: tollway serves the Responses API by "
                             "translating it to Chat Completions.", "invalid_request_error",
                        "unsupported_feature", param)


def canonical_request(raw: bytes) -> ClientRequest:
    body = json_object(raw)
    try:
        creq = parse_request("chat", orjson.dumps(chat_body(body)))
    except GatewayError as exc:  # a bound on a copied field: named as the client wrote it
        name = _CLIENT_NAMES.get(exc.param or "")
        if name is None:
            raise
        raise bad_request(exc.message.replace(f"'{exc.param}'", f"'{name}'"), name, exc.code or "invalid_request") \
            from None
    creq.raw_size = len(raw)
    creq.client_wants_usage = True  # response.completed carries the usage
    creq.dialect_state = turn(body)
    return creq


@dataclass(slots=True)
class ResponsesTurn:
    """What storing this response needs: the client's own input items, whether to store, and the earlier
    response it continues (whose items the dialect prepends once it knows the caller's key)."""
    input_items: list[dict[str, Any]]
    store: bool
    previous_response_id: str | None
    has_instructions: bool
    key_id: str = ""
    earlier_items: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)  # the client's own body, for an OpenAI upstream


def turn(body: dict[str, Any]) -> ResponsesTurn:
    """The turn of a body chat_body accepted (its fields are checked there)."""
    items = body["input"]
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    return ResponsesTurn(items, body.get("store") is not False, body.get("previous_response_id"),
                         body.get("instructions") is not None, body=body)


def _check_include(include: Any) -> None:
    if include is None:
        return
    if not isinstance(include, list) or not all(isinstance(item, str) for item in include):
        raise bad_request("'include' must be an array of strings.", "include")
    for item in include:
        if item in _UNSERVED_INCLUDES:
            raise unsupported(f"'include' of {item!r} ({_UNSERVED_INCLUDES[item]})", "include")


def _check_turn(body: dict[str, Any]) -> None:
    if body.get("store") is not None and not isinstance(body["store"], bool):
        raise bad_request("'store' must be a boolean.", "store")
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise bad_request("'previous_response_id' must be a non-empty string.", "previous_response_id")


def chat_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored Responses items (input and output) as chat messages, for a continued conversation."""
    return _input(items) if items else []


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    for name, value in body.items():
        if name in _UNSUPPORTED and value is not None:
            raise unsupported(f"'{name}' ({_UNSUPPORTED[name]})", name)
        if name not in _HANDLED and name not in _UNSUPPORTED:
            raise bad_request(f"'{name}' is not a Responses API parameter tollway knows; remove it.", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a non-empty string.", "model")
    _check_turn(body)
    _check_include(body.get("include"))
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad_request("'instructions' must be a string.", "instructions")
        messages.append({"role": "system", "content": instructions})
    messages.extend(_input(body.get("input")))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    for name, target in _COPIED.items():
        if body.get(name) is not None:
            chat[target] = body[name]
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    _text(body.get("text"), chat)
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise bad_request("'reasoning' must be an object.", "reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    return chat


def _input(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise bad_request("'input' is required: a string or a non-empty array of input items.", "input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"{at}: must be an object.", at)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, at))
        elif kind == "function_call":
            if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
                raise bad_request(f"{at}: a function_call needs string call_id, name and arguments.", at)
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            if out and out[-1]["role"] == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(item.get("call_id"), str) or not isinstance(output, str):
                raise bad_request(f"{at}: a function_call_output needs a string call_id and output.", at)
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
        elif kind == "reasoning":
            continue  # accepted and not applied (module docstring)
        else:
            raise unsupported(f"an input item of type {kind!r:.60}", f"{at}.type")
    return out


def _message(item: dict, at: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise bad_request(f"{at}.role: must be user, assistant, system or developer.", f"{at}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad_request(f"{at}.content: must be a string or an array of content parts.", f"{at}.content")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"{at}.content[{j}]"
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise bad_request(f"{where}: a part of type {kind!r:.40} is not valid here (input_text, output_text "
                              "and input_image with an image_url are).", where)
    if role == "assistant" or role in ("system", "developer"):
        return {"role": role, "content": "".join(p.get("text", "") for p in parts)}
    return {"role": role, "content": parts}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        at = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise unsupported(f"the built-in tool {kind!r:.60} ({at})", at)
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad_request(f"{at}.name: required (a non-empty string).", f"{at}.name")
        function: dict[str, Any] = {"name": tool["name"],
                                    "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise bad_request("'tool_choice' must be auto, none, required or {type: function, name}.", "tool_choice")


def _text(text: Any, chat: dict[str, Any]) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise bad_request("'text' must be an object.", "text")
    fmt = text.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif kind == "json_schema" and isinstance(fmt.get("schema"), dict) and isinstance(fmt.get("name"), str):
        schema = {"name": fmt["name"], "schema": fmt["schema"]}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    else:
        raise bad_request("text.format: must be {type: text}, {type: json_object} or {type: json_schema, name, "
                          "schema}.", "text.format")

"""tollway's canonical request (OpenAI Chat Completions) as an Anthropic Messages request.

Messages differs from Chat Completions in shape, not in meaning, for everything translated here: the
system prompt is a top-level field, tool results are `tool_result` blocks in a user turn, roles must
alternate (consecutive turns of one role are merged), images are `image` blocks, `max_tokens` is
required, thinking is a content block whose `signature` must come back unchanged on the next turn.
A field with no Messages counterpart (`n` > 1, logprobs, a JSON-schema response format, penalties,
audio or file parts) is refused with UntranslatableRequest naming it, never dropped.
Sources: https://docs.anthropic.com/en/api/messages ,
https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking ,
https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching (retrieved 2026-12-06).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.providers.dialect import UntranslatableRequest

# reasoning_effort -> thinking budget (Anthropic's minimum budget is 1024 tokens)
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_COPIED = ("temperature", "top_p", "top_k", "stream", "metadata", "thinking")
_IGNORED = frozenset({"model", "messages", "stream_options", "max_tokens", "max_completion_tokens", "stop",
                      "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort", "user"})
_KNOWN = _IGNORED | frozenset(_COPIED)
_DEFAULTS_ALLOWED = {"n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0,
                     "response_format": {"type": "text"}}


def messages_request(payload: bytes, max_output: int) -> bytes:
    """The Messages body for a Chat Completions body; max_tokens is the request's or `max_output`."""
    body = orjson.loads(payload)
    if not isinstance(body, dict):
        raise UntranslatableRequest("the request body must be a JSON object")
    _refuse_unknown(body)
    system, messages = _messages(body.get("messages") or [])
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if system:
        out["system"] = system
    out["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or max_output
    for name in _COPIED:
        if name in body and body[name] is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out.setdefault("metadata", {})["user_id"] = body["user"]
    if "thinking" not in out and body.get("reasoning_effort"):
        out["thinking"] = _thinking(body["reasoning_effort"], out["max_tokens"])
    if body.get("tools"):
        out["tools"] = [_tool(t) for t in body["tools"]]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    return orjson.dumps(out)


def _refuse_unknown(body: dict) -> None:
    for name, value in body.items():
        if name in _KNOWN or value is None:
            continue
        if name in _DEFAULTS_ALLOWED and value == _DEFAULTS_ALLOWED[name]:
            continue
        raise UntranslatableRequest(f"'{name}' cannot be sent to an Anthropic Messages upstream: the Messages "
                                    "API has no such parameter")


def _thinking(effort: Any, max_tokens: int) -> dict:
    budget = EFFORT_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise UntranslatableRequest(f"reasoning_effort {effort!r} is not one of {', '.join(EFFORT_BUDGETS)}")
    if max_tokens <= 1024:
        raise UntranslatableRequest("reasoning_effort needs max_tokens above 1024 on an Anthropic upstream "
                                    "(the thinking budget must be at least 1024 and below max_tokens)")
    return {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}


def _tool(tool: Any) -> dict:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not function.get("name"):
        raise UntranslatableRequest("tools: only function tools with a name can be sent to an Anthropic upstream")
    out = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    if tool.get("cache_control"):
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise UntranslatableRequest(f"tool_choice {choice!r} has no Anthropic counterpart")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _messages(messages: list) -> tuple[list[dict], list[dict]]:
    """(system blocks, alternating user/assistant turns)."""
    system: list[dict] = []
    turns: list[dict] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UntranslatableRequest(f"messages[{i}] must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content"), i, text_only=True))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message, i)]
        elif role == "user":
            blocks = _blocks(message.get("content"), i)
        elif role == "assistant":
            blocks = _assistant_blocks(message, i)
        else:
            raise UntranslatableRequest(f"messages[{i}].role {role!r} has no Anthropic counterpart")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _blocks(content: Any, i: int, text_only: bool = False) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise UntranslatableRequest(f"messages[{i}].content must be a string or a list of parts")
    out = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text", "")}
        elif kind == "image_url" and not text_only:
            block = _image(part.get("image_url"), i)
        else:
            raise UntranslatableRequest(f"messages[{i}].content: a {kind!r} part cannot be sent to an "
                                        "Anthropic upstream (text and image_url parts can)")
        if part.get("cache_control"):
            block["cache_control"] = part["cache_control"]
        out.append(block)
    return out


def _image(image: Any, i: int) -> dict:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise UntranslatableRequest(f"messages[{i}].content: image_url needs a url")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0]
        if ";base64" not in header or not media_type:
            raise UntranslatableRequest(f"messages[{i}].content: a data: image must be base64 with a media type")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict, i: int) -> list[dict]:
    blocks: list[dict] = []
    for thought in message.get("thinking_blocks") or []:  # signed thinking handed back unchanged
        if isinstance(thought, dict) and thought.get("type") in ("thinking", "redacted_thinking"):
            blocks.append(dict(thought))
    blocks.extend(_blocks(message.get("content"), i))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise UntranslatableRequest(f"messages[{i}].tool_calls: each call needs a function")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise UntranslatableRequest(f"messages[{i}].tool_calls: arguments of {function.get('name')!r} "
                                        "are not JSON (Anthropic takes tool input as an object)") from None
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments})
    return blocks


def _tool_result(message: dict, i: int) -> dict:
    if not message.get("tool_call_id"):
        raise UntranslatableRequest(f"messages[{i}]: a tool message needs tool_call_id")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"],
                              "content": content if isinstance(content, str) else _blocks(content, i)}
    return result

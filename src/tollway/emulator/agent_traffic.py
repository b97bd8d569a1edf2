"""What an agent's request asks of an answer beyond text: tool calls, `n` choices, logprobs, a JSON schema.

Every protocol (OpenAI-style chat, the Responses API, Anthropic Messages, Gemini) asks for these in its own
fields; this module reads them into one AgentPlan so each answer writer only shapes the result. The answer
is deterministic: tool arguments and structured output are instances of the declared schema
(schema_instance.py) seeded by the request's `seed` (0 when absent) plus the call's position, and
logprobs are a fixed function of the seed and the token's position. How many of the declared tools one
answer calls is the profile's `tool_calls` (1 by default; 2 or more rehearses parallel calls), capped by the
number declared and by a request that turns parallel calls off or names one tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from tollway.emulator.pacing import CONTENT, Schedule
from tollway.emulator.request_shape import InvalidRequest
from tollway.emulator.schema_instance import schema_instance

# Documented upper bounds of `n` (https://platform.openai.com/docs/api-reference/chat/create: 1..128;
# https://platform.kimi.ai/docs/api/models-overview: "1 (max 5)", retrieved 2026-12-07). A dialect not
# listed serves any n the request's own bound allows.
MAX_CHOICES = {"openai": 128, "azure": 128, "kimi": 5}
MAX_TOP_LOGPROBS = 20
JSON_OBJECT_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()

    def pieces(self, count: int = 3) -> list[str]:
        """The arguments as they stream: `count` fragments of partial JSON (fewer for a short text)."""
        return split_text(self.arguments_json, count)


@dataclass(frozen=True)
class AgentPlan:
    calls: tuple[ToolCall, ...] = ()
    choices: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    structured: str | None = None  # the JSON text the content is, when a schema was asked for
    seed: int = 0


NO_PLAN = AgentPlan()


def split_text(text: str, count: int) -> list[str]:
    """`text` in `count` consecutive non-empty pieces of near-equal length (fewer when it is shorter)."""
    count = max(1, min(count, len(text)))
    if not text:
        return []
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _last(value: Any) -> dict[str, Any]:
    items = _items(value)
    return _mapping(items[-1]) if items else {}


def request_seed(body: dict) -> int:
    seed = body.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def _calls(tools: list[tuple[str, Any]], wanted: int, seed: int) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(name, schema_instance(schema, seed + index) if isinstance(schema, dict) else {})
                 for index, (name, schema) in enumerate(tools[:wanted]))


def _top_logprobs(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(f"'{name}' must be an integer between 0 and {MAX_TOP_LOGPROBS}, got {value!r}")
    return value


def _structured(schema: Any, seed: int) -> str:
    return orjson.dumps(schema_instance(schema, seed)).decode()


# ---- OpenAI-style chat ----------------------------------------------------------------------------------

def chat_plan(body: dict, dialect: str, tool_calls: int) -> AgentPlan:
    """Chat Completions: tools + tool_choice + parallel_tool_calls, n, logprobs/top_logprobs, response_format."""
    seed = request_seed(body)
    n = body.get("n", 1)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidRequest(f"'n' must be a positive integer, got {n!r}")
    limit = MAX_CHOICES.get(dialect)
    if limit is not None and n > limit:
        raise InvalidRequest(f"'n' must be at most {limit} for this model, got {n}")
    logprobs = body.get("logprobs") is True
    top = _top_logprobs(body.get("top_logprobs"), "top_logprobs")
    if top and not logprobs:
        raise InvalidRequest("'top_logprobs' needs 'logprobs' set to true")
    return AgentPlan(_chat_calls(body, tool_calls, seed), n, logprobs, top, _chat_structured(body, seed), seed)


def _chat_calls(body: dict, wanted: int, seed: int) -> tuple[ToolCall, ...]:
    choice = body.get("tool_choice")
    if _last(body.get("messages")).get("role") == "tool" or choice == "none":
        return ()
    functions = [_mapping(_mapping(t).get("function")) for t in _items(body.get("tools"))]
    tools = [(f["name"], f.get("parameters")) for f in functions if isinstance(f.get("name"), str) and f["name"]]
    named = _mapping(_mapping(choice).get("function")).get("name")
    return _pick(tools, named, body.get("parallel_tool_calls") is False, wanted, seed)


def _pick(tools: list[tuple[str, Any]], named: str | None, single: bool, wanted: int,
          seed: int) -> tuple[ToolCall, ...]:
    if named is not None:
        tools = [t for t in tools if t[0] == named]
    return _calls(tools, 1 if single or named else wanted, seed)


def _chat_structured(body: dict, seed: int) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        return _structured(spec.get("schema") if isinstance(spec, dict) else None, seed)
    if fmt.get("type") == "json_object":
        return _structured(JSON_OBJECT_SCHEMA, seed)
    return None


# ---- the Responses API --------------------------------------------------------------------------------

def responses_plan(body: dict, tool_calls: int) -> AgentPlan:
    """Responses: function tools (flat: name/parameters), tool_choice, parallel_tool_calls, text.format,
    top_logprobs (logprobs come back when `include` names message.output_text.logprobs)."""
    seed = request_seed(body)
    last = _last(body.get("input"))
    choice = body.get("tool_choice")
    calls: tuple[ToolCall, ...] = ()
    if last.get("type") != "function_call_output" and choice != "none":
        tools = [(t["name"], t.get("parameters")) for t in map(_mapping, _items(body.get("tools")))
                 if t.get("type") == "function" and isinstance(t.get("name"), str)]
        named = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "function" else None
        calls = _pick(tools, named, body.get("parallel_tool_calls") is False, tool_calls, seed)
    include = _items(body.get("include"))
    top = _top_logprobs(body.get("top_logprobs"), "top_logprobs")
    fmt = _mapping(_mapping(body.get("text")).get("format"))
    structured = None
    if fmt.get("type") == "json_schema":
        structured = _structured(fmt.get("schema"), seed)
    elif fmt.get("type") == "json_object":
        structured = _structured(JSON_OBJECT_SCHEMA, seed)
    return AgentPlan(calls, 1, "message.output_text.logprobs" in include, top, structured, seed)


# ---- Anthropic Messages -------------------------------------------------------------------------------

def messages_plan(body: dict, tool_calls: int) -> AgentPlan:
    """Messages: tools (input_schema), tool_choice auto/any/tool/none and disable_parallel_tool_use. A forced
    tool (`{"type": "tool", "name": ...}`) is how Anthropic clients ask for schema-shaped output."""
    seed = request_seed(body)
    content = _items(_last(body.get("messages")).get("content"))
    answered = any(_mapping(block).get("type") == "tool_result" for block in content)
    choice = _mapping(body.get("tool_choice"))
    if answered or choice.get("type") == "none":
        return AgentPlan(seed=seed)
    tools = [(t["name"], t.get("input_schema")) for t in map(_mapping, _items(body.get("tools")))
             if isinstance(t.get("name"), str) and t["name"] and "input_schema" in t]
    named = choice.get("name") if choice.get("type") == "tool" else None
    return AgentPlan(_pick(tools, named, choice.get("disable_parallel_tool_use") is True, tool_calls, seed),
                     seed=seed)


# ---- Gemini --------------------------------------------------------------------------------------------

def gemini_plan(body: dict, tool_calls: int) -> AgentPlan:
    """generateContent: functionDeclarations, toolConfig.functionCallingConfig (mode NONE, allowed names),
    generationConfig.responseSchema / responseJsonSchema with responseMimeType application/json."""
    seed = request_seed(body)
    answered = any("functionResponse" in _mapping(p) for p in _items(_last(body.get("contents")).get("parts")))
    calling = _mapping(_mapping(body.get("toolConfig")).get("functionCallingConfig"))
    calls: tuple[ToolCall, ...] = ()
    if not answered and calling.get("mode") != "NONE":
        allowed = calling.get("allowedFunctionNames")
        declared = [_mapping(d) for t in _items(body.get("tools")) for d in _items(_mapping(t).get(
            "functionDeclarations"))]
        tools = [(d["name"], d.get("parametersJsonSchema") or _lower_types(d.get("parameters"))) for d in declared
                 if isinstance(d.get("name"), str) and (not isinstance(allowed, list) or d["name"] in allowed)]
        calls = _calls(tools, tool_calls, seed)
    config = _mapping(body.get("generationConfig"))
    schema = config.get("responseJsonSchema") or _lower_types(config.get("responseSchema"))
    structured = _structured(schema, seed) if schema and config.get("responseMimeType") == "application/json" else None
    return AgentPlan(calls, structured=structured, seed=seed)


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema spells types in capitals (OBJECT, STRING); JSON Schema in lower case."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


# ---- logprobs -----------------------------------------------------------------------------------------

@dataclass
class LogprobCounter:
    """Hands out each token's logprob entry in order, so a stream and a whole body agree token for token."""

    seed: int
    top: int
    position: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    def entries_for(self, text: str, tokens: int) -> list[dict[str, Any]]:
        out = [self._entry(token) for token in split_tokens(text, tokens)]
        self.entries.extend(out)
        return out

    def _entry(self, token: str) -> dict[str, Any]:
        position, self.position = self.position, self.position + 1
        logprob = -round(0.001 + ((position * 7919 + self.seed * 104729) % 997) / 997 * 0.5, 6)
        top = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        for rank in range(1, self.top):
            alternative = f"alt{rank}"
            top.append({"token": alternative, "logprob": round(logprob - 1.5 * rank, 6),
                        "bytes": list(alternative.encode())})
        return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top[:self.top]}


def split_tokens(text: str, tokens: int) -> list[str]:
    """A piece's text as its `tokens` tokens: the emulator's words (" tok3") when they match the count,
    else near-equal slices (structured output)."""
    if tokens <= 0 or not text:
        return []
    words, start = [], 0
    for index in range(1, len(text) + 1):
        if index == len(text) or text[index] == " ":
            words.append(text[start:index])
            start = index
    return words if len(words) == tokens else split_text(text, tokens)


# ---- structured output in a schedule ------------------------------------------------------------------

def with_content(schedule: Schedule, text: str) -> Schedule:
    """The schedule with its content pieces carrying `text` (the JSON instance) instead of the emulator's
    words, split in proportion to each piece's tokens: timing and token counts stay the schedule's."""
    content = [p for p in schedule.pieces if p.kind == CONTENT]
    total = sum(p.tokens for p in content)
    if not content or not total:
        return schedule
    pieces, done, start = [], 0, 0
    for piece in schedule.pieces:
        if piece.kind != CONTENT:
            pieces.append(piece)
            continue
        done += piece.tokens
        end = len(text) if done == total else len(text) * done // total
        pieces.append(replace(piece, text=text[start:end]))
        start = end
    return replace(schedule, pieces=pieces)

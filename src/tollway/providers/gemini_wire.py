"""tollway's canonical request as a Gemini generateContent request, and its answers and streams back.

Request: system/developer messages -> `systemInstruction`; user/assistant turns -> `contents` with
roles user/model; text -> `text` parts, base64 data: images -> `inlineData` (a plain http(s) image URL
has no generateContent counterpart and is refused); assistant tool_calls -> `functionCall` parts; tool
messages -> `functionResponse` parts (named by the call they answer); sampling and limits ->
`generationConfig`; tools -> `functionDeclarations`; tool_choice -> `toolConfig.functionCallingConfig`;
reasoning_effort -> `thinkingConfig` with thoughts included (returned as reasoning_content);
response_format json_schema -> `responseMimeType` + `responseJsonSchema`.
Answer: text parts -> content, `thought` parts -> reasoning_content, functionCall -> tool_calls
(Gemini sends each call whole, so a stream carries its arguments in one delta). A prompt blocked by
safety (`promptFeedback.blockReason`, no candidates) is a content refusal (WireRefusal); a candidate
stopped by SAFETY ends with finish_reason content_filter.
Usage: promptTokenCount includes cachedContentTokenCount; output is billed as candidates + thoughts,
so completion_tokens = candidatesTokenCount + thoughtsTokenCount, reasoning_tokens = thoughts.
Sources: https://ai.google.dev/api/generate-content , https://ai.google.dev/gemini-api/docs/thinking ,
https://ai.google.dev/gemini-api/docs/function-calling (retrieved 2026-12-06).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from tollway.core.usage import Usage
from tollway.providers.chat_chunks import DONE, ChunkWriter, completion, event_data
from tollway.providers.dialect import UntranslatableRequest, WireRefusal
from tollway.providers.failure import FailureKind
from tollway.providers.usage_fields import count, mapping

FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
                  "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                  "IMAGE_SAFETY": "content_filter", "LANGUAGE": "stop", "OTHER": "stop",
                  "MALFORMED_FUNCTION_CALL": "stop"}
THINKING_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_CONFIG = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "seed": "seed",
           "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty", "n": "candidateCount"}
_HANDLED = frozenset({"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "stop",
                      "tools", "tool_choice", "reasoning_effort", "response_format", "user", "parallel_tool_calls"})


def generate_request(payload: bytes, max_output: int) -> bytes:
    """The generateContent body for a Chat Completions body (the model and stream are in the URL)."""
    body = orjson.loads(payload)
    if not isinstance(body, dict):
        raise UntranslatableRequest("the request body must be a JSON object")
    config: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or name in _HANDLED:
            continue
        if name not in _CONFIG:
            raise UntranslatableRequest(f"'{name}' cannot be sent to a Gemini upstream: generateContent has no "
                                        "such parameter")
        if name == "n" and value != 1:
            raise UntranslatableRequest("'n' above 1 is not served from a Gemini upstream: tollway reads one "
                                        "candidate")
        config[_CONFIG[name]] = value
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("reasoning_effort"):
        budget = THINKING_BUDGETS.get(body["reasoning_effort"])
        if budget is None:
            raise UntranslatableRequest(f"reasoning_effort {body['reasoning_effort']!r} is not one of "
                                        f"{', '.join(THINKING_BUDGETS)}")
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
    _response_format(body.get("response_format"), config)
    system, contents = _contents(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    if config:
        out["generationConfig"] = config
    if body.get("tools"):
        out["tools"] = [{"functionDeclarations": [_declaration(t) for t in body["tools"]]}]
    if body.get("tool_choice") is not None:
        out["toolConfig"] = {"functionCallingConfig": _calling_config(body["tool_choice"])}
    return orjson.dumps(out)


def _response_format(fmt: Any, config: dict) -> None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = mapping(fmt.get("json_schema")).get("schema", {})
    else:
        raise UntranslatableRequest(f"response_format {kind!r} has no Gemini counterpart")


def _declaration(tool: Any) -> dict:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not function.get("name"):
        raise UntranslatableRequest("tools: only function tools with a name can be sent to a Gemini upstream")
    out = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _calling_config(choice: Any) -> dict:
    if choice in ("auto", "none"):
        return {"mode": choice.upper()}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and mapping(choice.get("function")).get("name"):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise UntranslatableRequest(f"tool_choice {choice!r} has no Gemini counterpart")


def _contents(messages: list) -> tuple[list[dict], list[dict]]:
    system: list[dict] = []
    contents: list[dict] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UntranslatableRequest(f"messages[{i}] must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content"), i))
            continue
        if role == "user":
            role, parts = "user", _parts(message.get("content"), i)
        elif role == "assistant":
            role, parts = "model", _parts(message.get("content"), i)
            for call in message.get("tool_calls") or []:
                function = mapping(call.get("function") if isinstance(call, dict) else None)
                call_names[str(call.get("id"))] = str(function.get("name"))
                try:
                    args = orjson.loads(function.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    raise UntranslatableRequest(f"messages[{i}].tool_calls: arguments are not JSON") from None
                parts.append({"functionCall": {"name": function.get("name"), "args": args}})
        elif role == "tool":
            name = call_names.get(str(message.get("tool_call_id")))
            if name is None:
                raise UntranslatableRequest(f"messages[{i}]: tool_call_id {message.get('tool_call_id')!r} answers "
                                            "no earlier tool call (Gemini names a function response by its call)")
            content = message.get("content")
            text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])
            role, parts = "user", [{"functionResponse": {"name": name, "response": {"content": text}}}]
        else:
            raise UntranslatableRequest(f"messages[{i}].role {role!r} has no Gemini counterpart")
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _parts(content: Any, i: int) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for part in content if isinstance(content, list) else [None]:
        if not isinstance(part, dict):
            raise UntranslatableRequest(f"messages[{i}].content must be a string or a list of parts")
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = mapping(part.get("image_url")).get("url", "")
            header, _, data = str(url).partition(",")
            if not header.startswith("data:") or ";base64" not in header:
                raise UntranslatableRequest(f"messages[{i}].content: a Gemini upstream takes images inline "
                                            "(a base64 data: URL), not by http(s) URL")
            parts.append({"inlineData": {"mimeType": header[5:].split(";")[0], "data": data}})
        else:
            raise UntranslatableRequest(f"messages[{i}].content: a {kind!r} part cannot be sent to a Gemini "
                                        "upstream (text and image_url parts can)")
    return parts


def chat_usage(meta: Mapping) -> dict[str, Any]:
    """Chat Completions usage for Gemini's usageMetadata (tool-use prompt tokens count as prompt)."""
    prompt = count(meta.get("promptTokenCount")) + count(meta.get("toolUsePromptTokenCount"))
    thoughts = count(meta.get("thoughtsTokenCount"))
    completion_tokens = count(meta.get("candidatesTokenCount")) + thoughts
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": count(meta.get("cachedContentTokenCount"))},
            "completion_tokens_details": {"reasoning_tokens": thoughts}}


def _blocked(answer: Mapping) -> WireRefusal | None:
    reason = mapping(answer.get("promptFeedback")).get("blockReason")
    if reason and not answer.get("candidates"):
        return WireRefusal(FailureKind.CONTENT_FILTER, f"the prompt was blocked by Gemini's safety filter ({reason})")
    return None


def _candidate_parts(answer: Mapping) -> tuple[Mapping, list]:
    candidates = answer.get("candidates") or [{}]
    candidate = mapping(candidates[0])
    return candidate, list(mapping(candidate.get("content")).get("parts") or [])


def _call(part: Mapping) -> dict:
    call = mapping(part.get("functionCall"))
    return {"id": str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}"), "type": "function",
            "function": {"name": call.get("name"), "arguments": orjson.dumps(call.get("args") or {}).decode()}}


def chat_completion(body: bytes) -> bytes:
    """A chat.completion for a non-streamed generateContent answer."""
    answer = orjson.loads(body)
    refusal = _blocked(answer)
    if refusal is not None:
        raise refusal
    candidate, parts = _candidate_parts(answer)
    text = "".join(p.get("text", "") for p in parts if "text" in p and not p.get("thought"))
    reasoning = "".join(p.get("text", "") for p in parts if p.get("thought"))
    calls = [_call(p) for p in parts if "functionCall" in p]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    reason = "tool_calls" if calls else FINISH_REASONS.get(str(candidate.get("finishReason")), "stop")
    meta = answer.get("usageMetadata")
    return completion(str(answer.get("responseId") or f"gen-{uuid.uuid4().hex[:24]}"),
                      str(answer.get("modelVersion") or ""), message, reason,
                      chat_usage(meta) if isinstance(meta, Mapping) else None)


_MARK = b'"\x00"'  # a literal no chunk head can hold (orjson writes NUL as \u0000): where the text goes


class GenerateStream:
    """One streamGenerateContent (alt=sse) stream as Chat Completions chunks: each event is a partial
    GenerateContentResponse; usageMetadata is cumulative (the last one wins).

    The usual event is one more piece of text: once such an event has been parsed, the bytes before its
    text's literal (`_quick_prefix`), from the literal's closing quote to the usage object (`_quick_mid`) and
    after that object (`_quick_tail`) are kept. A later event made of the same bytes around a literal with
    no quote in it is translated by copying the literal, and its usage object is kept unparsed until the
    stream's end needs it."""

    __slots__ = ("_chunks", "_meta", "_calls", "_finished", "_quick_prefix", "_quick_mid", "_quick_tail",
                 "_quick_head", "_quick_end")
    reported_prompt: Usage | None = None  # each event's usageMetadata covers the whole answer so far

    def __init__(self) -> None:
        self._chunks: ChunkWriter | None = None
        self._meta: Mapping | bytes = {}  # bytes: a usage object the short path kept unparsed
        self._calls = 0
        self._finished = False
        self._quick_prefix = self._quick_mid = self._quick_tail = self._quick_head = self._quick_end = b""

    def feed(self, event: bytes) -> bytes:
        prefix = self._quick_prefix
        if prefix and event.startswith(prefix) and event.endswith(self._quick_tail):
            start = len(prefix)
            end = event.find(b'"', start)  # the literal's closing quote, if nothing is escaped in it
            if end > 0 and event[end - 1] != 92 and event.startswith(self._quick_mid, end):
                meta = event[end + len(self._quick_mid):len(event) - len(self._quick_tail)]
                if meta[:1] == b"{" and meta[-1:] == b"}":
                    self._meta = meta
                    return self._quick_head + event[start - 1:end + 1] + self._quick_end
        data = event_data(event)
        if not data:
            return b""
        answer = orjson.loads(data)
        out = b""
        chunks = self._chunks
        if chunks is None:
            refusal = _blocked(answer)
            if refusal is not None:
                raise refusal
            chunks = self._chunks = ChunkWriter(str(answer.get("responseId") or f"gen-{uuid.uuid4().hex[:24]}"),
                                                str(answer.get("modelVersion") or ""))
            out = chunks.delta({"role": "assistant", "content": ""})
        meta = answer.get("usageMetadata")
        if isinstance(meta, Mapping):
            self._meta = meta
        candidate, parts = _candidate_parts(answer)
        for part in parts:
            if "functionCall" in part:
                call = _call(part)
                call["index"] = self._calls
                self._calls += 1
                out += chunks.delta({"tool_calls": [call]})
            elif part.get("thought"):
                out += chunks.delta({"reasoning_content": part.get("text", "")})
            elif "text" in part:
                out += chunks.delta({"content": part["text"]})
        reason = candidate.get("finishReason")
        if reason:
            self._finished = True
            out += chunks.finish("tool_calls" if self._calls else FINISH_REASONS.get(str(reason), "stop"))
        elif len(parts) == 1 and parts[0].keys() == {"text"} and isinstance(meta, Mapping):
            self._learn(event, parts[0]["text"], chunks)
        return out

    def _learn(self, event: bytes, text: str, chunks: ChunkWriter) -> None:
        """Keep the bytes around this plain text event's literal and usage object for the short path, when
        they can be found with certainty (the literal decodes to the text; the usage object follows it)."""
        at = event.find(b'"text":')
        start = at + 7
        while 0 < start < len(event) and event[start] == 32:
            start += 1
        end = _string_end(event, start) if at > 0 and event[start:start + 1] == b'"' else -1
        key = event.find(b'"usageMetadata":', end) if end > 0 else -1
        if key < 0 or orjson.loads(event[start:end + 1]) != text:
            return
        begin = key + 16
        while begin < len(event) and event[begin] == 32:
            begin += 1
        stop = _object_end(event, begin)
        if stop < 0:
            return
        self._quick_prefix, self._quick_mid, self._quick_tail = event[:start + 1], event[end:begin], event[stop:]
        self._quick_head, self._quick_end = chunks.text_delta(b"content", _MARK).split(_MARK)

    def finish(self) -> bytes:
        if not self._finished or self._chunks is None:
            return b""
        meta = self._meta
        return self._chunks.usage(chat_usage(orjson.loads(meta) if isinstance(meta, bytes) else meta)) + DONE


def _string_end(data: bytes, start: int) -> int:
    """The index of the quote that closes the JSON string opening at `start`; -1 if none."""
    end = data.find(b'"', start + 1)
    while end > 0 and data[end - 1] == 92:
        slashes = 1
        while data[end - 1 - slashes] == 92:
            slashes += 1
        if not slashes & 1:
            break
        end = data.find(b'"', end + 1)
    return end


def _object_end(data: bytes, start: int) -> int:
    """The index just after the JSON object opening at `start` (strings skipped); -1 if it does not close."""
    if data[start:start + 1] != b"{":
        return -1
    depth, at = 0, start
    while at < len(data):
        char = data[at]
        if char == 34:  # a string: jump to its end
            at = _string_end(data, at)
            if at < 0:
                return -1
        elif char in (123, 91):
            depth += 1
        elif char in (125, 93):
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1
    return -1

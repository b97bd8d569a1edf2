"""tollway's canonical answer (a chat completion, or a chat SSE stream) as OpenAI Responses answers.

A completion becomes a `response` object: a `reasoning` item (from reasoning_content, as a summary
text), a `message` item with one `output_text` part, a `function_call` item per tool call; status
`incomplete` (reason max_output_tokens) when the answer was cut by the token limit. A stream becomes the
semantic events as it arrives: `response.created`, `response.in_progress`, per item
`response.output_item.added` ... `response.output_item.done` (text: `content_part.added`,
`output_text.delta`, `output_text.done`, `content_part.done`; tool calls:
`function_call_arguments.delta` and `.done`), then `response.completed` with the whole response.
Source: https://platform.openai.com/docs/api-reference/responses-streaming (retrieved 2026-12-06).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import orjson

from tollway.core.usage import Usage
from tollway.gateway.client_dialects.chat_stream import ChatStreamTranslator

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink


def response_usage(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        usage = Usage()
    return {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


def response_object(response_id: str, model: str, created: int, output: list[dict], usage: Usage | None,
                    finish: str | None, status: str = "completed") -> dict[str, Any]:
    incomplete = finish == "length"
    return {"id": response_id, "object": "response", "created_at": created,
            "status": "incomplete" if incomplete and status == "completed" else status,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None, "error": None,
            "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": response_usage(usage) if status != "in_progress" else None}


def _response_id(chat_id: Any) -> str:
    """A fresh id of tollway's own: a stored response is found by it, and an upstream's completion id need
    not be unique across keys or upstreams."""
    return "resp_" + secrets.token_hex(24)


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": text}]}


def responses_answer(completion: bytes, usage: Usage, model: str) -> bytes:
    parsed = orjson.loads(completion)
    choice = (parsed.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    rid = _response_id(parsed.get("id"))
    output: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        output.append(reasoning_item(f"rs_{rid}", message["reasoning_content"]))
    if message.get("content"):
        output.append(message_item(f"msg_{rid}", message["content"]))
    for n, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        output.append(call_item(f"fc_{rid}_{n}", call.get("id") or f"call_{n}", function.get("name") or "",
                                function.get("arguments") or ""))
    created = parsed.get("created") if isinstance(parsed.get("created"), int) else int(time.time())
    return orjson.dumps(response_object(rid, model, created, output, usage, choice.get("finish_reason")))


_TEXT_DELTA_HEAD = (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
                    b'"sequence_number":')


def _fold(item: dict[str, Any]) -> None:
    """Decode the JSON literals of the pieces written by the short path into the item's text, in order."""
    literals = item.get("_literals")
    if literals:
        item["_text"] += "".join(orjson.loads(b"[" + b",".join(literals) + b"]"))
        literals.clear()


class ResponsesEventSink(ChatStreamTranslator):
    """Takes the chat SSE blocks the relay forwards and writes the Responses events to the client's sink."""

    def __init__(self, sink: "StreamSink", model: str, read_usage: Callable[[Mapping], Usage | None]) -> None:
        super().__init__(sink)
        self._model = model
        self._read_usage = read_usage
        self._seq = 0
        self._id = ""
        self._created = int(time.time())
        self._started = False
        self._output: list[dict[str, Any]] = []   # finished items
        self._open: dict[str, Any] | None = None  # the message or reasoning item being streamed
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool call index -> its open function_call item
        self._next = 0  # the output_index the next item takes
        self._usage: Usage | None = None
        self._finish: str | None = None
        self.final: dict[str, Any] | None = None  # the whole response, once completed

    def _event(self, kind: str, **fields: Any) -> bytes:
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
            {"type": kind, "sequence_number": self._seq - 1, **fields}) + b"\n\n"

    def _close_stream(self) -> bytes:
        return self._complete()

    def _error_event(self, message: str) -> bytes:
        return self._event("error", code=None, message=message, param=None)

    def _translate(self, chunk: dict) -> bytes:
        out = [] if self._started else [self._start(chunk)]
        if isinstance(chunk.get("usage"), dict):
            self._usage = self._read_usage(chunk) or self._usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out.append(self._piece("reasoning", delta["reasoning_content"]))
            if delta.get("content"):
                out.append(self._piece("message", delta["content"]))
            for call in delta.get("tool_calls") or ():
                out.append(self._call(call))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _start(self, chunk: dict) -> bytes:
        self._started = True
        self._id = _response_id(chunk.get("id"))
        shell = response_object(self._id, self._model, self._created, [], None, None, "in_progress")
        return self._event("response.created", response=shell) + self._event("response.in_progress", response=shell)

    def _take_index(self) -> int:
        """The output_index of a new item: items are numbered as they are added, and several function
        calls can be open at once (a chat stream interleaves their argument deltas by call index)."""
        self._next += 1
        return self._next - 1

    def _piece(self, kind: str, text: str) -> bytes:
        out = b""
        item = self._open
        if item is None or item["type"] != kind:
            out = self._close() + self._close_calls()
            index = self._take_index()
            item_id = f"{'rs' if kind == 'reasoning' else 'msg'}_{self._id}_{index}"
            if kind == "reasoning":
                item = {"type": "reasoning", "id": item_id, "summary": [], "_text": "", "_index": index}
                out += self._event("response.output_item.added", output_index=index,
                                   item=reasoning_item(item_id, "") | {"summary": []})
                out += self._event("response.reasoning_summary_part.added", item_id=item_id,
                                   output_index=index, summary_index=0,
                                   part={"type": "summary_text", "text": ""})
            else:
                item = {"type": "message", "id": item_id, "_text": "", "_literals": [], "_index": index,
                        "_head": b'"item_id":%s,"output_index":%d,"content_index":0,"delta":' % (
                            orjson.dumps(item_id), index)}
                out += self._event("response.output_item.added", output_index=index,
                                   item=message_item(item_id, "", "in_progress"))
                out += self._event("response.content_part.added", item_id=item_id, output_index=index,
                                   content_index=0, part={"type": "output_text", "text": "", "annotations": []})
                self._text_open = True
            self._open = item
        _fold(item)
        item["_text"] += text
        if kind == "reasoning":
            return out + self._event("response.reasoning_summary_text.delta", item_id=item["id"],
                                     output_index=item["_index"], summary_index=0, delta=text)
        return out + self._event("response.output_text.delta", item_id=item["id"], output_index=item["_index"],
                                 content_index=0, delta=text, logprobs=[])

    def _call(self, call: dict) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        item = self._calls.get(index)
        if item is None:
            out = self._close()
            output_index = self._take_index()
            item_id = f"fc_{self._id}_{output_index}"
            item = {"type": "function_call", "id": item_id, "call_id": call.get("id") or f"call_{index}",
                    "name": function.get("name") or "", "_text": "", "_index": output_index}
            self._calls[index] = item
            out += self._event("response.output_item.added", output_index=output_index,
                               item=call_item(item_id, item["call_id"], item["name"], "", "in_progress"))
        arguments = function.get("arguments")
        if arguments:
            item["_text"] += arguments
            out += self._event("response.function_call_arguments.delta", item_id=item["id"],
                               output_index=item["_index"], delta=arguments)
        return out

    def _text_delta(self, literal: bytes) -> bytes:
        """The output_text.delta event of the open message around the piece's JSON literal; the literals
        are decoded together once the text is needed (the done events, the final response)."""
        item = self._open
        assert item is not None  # the chat stream's short path writes text only into an open message
        item["_literals"].append(literal)
        self._seq = seq = self._seq + 1
        return b'%s%d,%s%s,"logprobs":[]}\n\n' % (_TEXT_DELTA_HEAD, seq - 1, item["_head"], literal)

    def _close(self) -> bytes:
        """Finish the open message or reasoning item."""
        item, self._open = self._open, None
        self._text_open = False
        return b"" if item is None else self._done(item)

    def _close_calls(self) -> bytes:
        """Finish the open function calls, in the order they were added."""
        calls = sorted(self._calls.values(), key=lambda item: item["_index"])
        self._calls.clear()
        return b"".join(self._done(item) for item in calls)

    def _done(self, item: dict[str, Any]) -> bytes:
        _fold(item)
        index, text, item_id = item["_index"], item["_text"], item["id"]
        if item["type"] == "message":
            done = message_item(item_id, text)
            out = (self._event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                               text=text, logprobs=[])
                   + self._event("response.content_part.done", item_id=item_id, output_index=index,
                                 content_index=0, part=done["content"][0]))
        elif item["type"] == "reasoning":
            done = reasoning_item(item_id, text)
            out = (self._event("response.reasoning_summary_text.done", item_id=item_id, output_index=index,
                               summary_index=0, text=text)
                   + self._event("response.reasoning_summary_part.done", item_id=item_id, output_index=index,
                                 summary_index=0, part=done["summary"][0]))
        else:
            done = call_item(item_id, item["call_id"], item["name"], text)
            out = self._event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                              arguments=text, name=item["name"])
        self._output.append(done)
        return out + self._event("response.output_item.done", output_index=index, item=done)

    def _complete(self) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        out = b"" if self._started else self._start({})
        out += self._close() + self._close_calls()
        self.final = final = response_object(self._id, self._model, self._created, self._output, self._usage,
                                             self._finish)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return out + self._event(kind, response=final)

"""The short path of the client dialects' stream translation (chat_stream.py): a text-only chunk's literal
copied into the dialect's event without parsing must give the client exactly what the parsing path gives,
for any text (quotes, backslashes, control characters, non-ASCII), in every upstream's spelling of a
chunk, one event per read or several; and a chunk it must not take (a finish, usage, other delta fields,
spaced JSON) is left to the parsing path."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.core.usage import Usage
from tollway.gateway.client_dialects.anthropic_answer import MessagesEventSink
from tollway.gateway.client_dialects.chat_stream import content_span
from tollway.gateway.client_dialects.openai_responses_answer import ResponsesEventSink

USAGE = Usage(10, 0, 0, 5)


class Collect:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(data)


def parsing_only(kind: type) -> type:
    """The same sink with the short path switched off: `_text_open` never reads true."""
    return type(f"Parsing{kind.__name__}", (kind,), {"_text_open": property(lambda self: False,
                                                                             lambda self, value: None)})


# how upstreams spell a text chunk: OpenAI (logprobs, usage null), DeepSeek (reasoning_content null), vLLM
STYLES = [
    lambda text: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                  "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
                  "usage": None},
    lambda text: {"id": "c2", "object": "chat.completion.chunk", "created": 1, "model": "m",
                  "choices": [{"index": 0, "delta": {"content": text, "reasoning_content": None},
                               "logprobs": None, "finish_reason": None}]},
    lambda text: {"id": "c3", "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None,
                                           "finish_reason": None, "stop_reason": None}]},
]


def stream(style, pieces: list[str]) -> list[bytes]:
    events = [orjson.dumps({**style(""), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                      "finish_reason": None}]})]
    events += [orjson.dumps(style(piece)) for piece in pieces]
    events.append(orjson.dumps({**style(""), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append(orjson.dumps({"id": "u", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}))
    return [b"data: " + event + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]


def client_events(kind: type, reads: list[bytes]) -> list[dict]:
    sink = Collect()
    translating = kind(sink, "chat", lambda chunk: USAGE)

    async def run() -> None:
        for read in reads:
            await translating.write(read)
        await translating.end()

    asyncio.run(run())
    out = []
    for block in b"".join(sink.writes).split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                out.append(scrubbed(orjson.loads(line[6:])))
    return out


def scrubbed(value):
    """Without the ids and times a Responses stream makes fresh for each stream."""
    if isinstance(value, dict):
        return {k: scrubbed(v) for k, v in value.items() if k not in ("id", "item_id", "created_at")}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return value


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(TEXT, min_size=1, max_size=8), style=st.sampled_from(STYLES), batched=st.booleans())
def test_the_short_path_writes_what_the_parsing_path_writes(pieces, style, batched):
    reads = stream(style, pieces)
    if batched:  # a fast upstream: several events per read
        reads = [b"".join(reads[:3]), *reads[3:5], b"".join(reads[5:])]
    for kind in (MessagesEventSink, ResponsesEventSink):
        assert client_events(kind, reads) == client_events(parsing_only(kind), reads)


def test_the_text_of_a_responses_stream_is_whole_in_its_done_events():
    reads = stream(STYLES[0], ['say "hi"', " \\ back", "\u00e9\n", ""])
    events = client_events(ResponsesEventSink, reads)
    done = [e for e in events if e["type"] == "response.output_text.done"][0]
    final = [e for e in events if e["type"] == "response.completed"][0]["response"]
    assert done["text"] == 'say "hi" \\ back\u00e9\n' == final["output"][0]["content"][0]["text"]


def test_chunks_the_short_path_must_not_take():
    def span(chunk: dict) -> tuple[int, int] | None:
        return content_span(b"data: " + orjson.dumps(chunk))

    text = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    assert span({"choices": [text]}) is not None
    assert span({"choices": [{**text, "finish_reason": "stop"}]}) is None
    assert span({"choices": [text], "usage": {"prompt_tokens": 1}}) is None
    assert span({"choices": [{**text, "delta": {"content": "hi", "reasoning_content": "r"}}]}) is None
    assert span({"choices": [{**text, "delta": {"content": "hi", "tool_calls": [{"index": 0}]}}]}) is None
    assert span({"choices": [text, {**text, "index": 1}]}) is None
    assert span({"choices": [{**text, "delta": {"content": None, "reasoning_content": "r"}}]}) is None
    assert content_span(b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}') is None
    event = b"data: " + orjson.dumps({"choices": [{**text, "delta": {"content": 'a\\"b\\\\'}}]})
    start, end = content_span(event)
    assert orjson.loads(event[start:end]) == 'a\\"b\\\\'

"""Usage tollway counts itself, from the text of an answer, when the upstream reports none.

The rule is core/usage.py's estimate_tokens (a token per 4 ASCII characters, rounded up, plus one per
other character). It only counts characters, so a stream's text is tallied piece by piece, as it is
found in the events, and never joined. Which fields hold completion text is dialect knowledge, kept in
the provider layer: docs/usage-normalisation.md lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import orjson

from tollway.core.usage import USAGE_ESTIMATED, Usage, estimate_tokens

_EMPTY: Mapping = {}


class TextTally:
    """The characters of a text as estimate_tokens counts them, added up piece by piece.

    The rule only counts ASCII and other characters, so pieces can be tallied and forgotten:
    `tokens` equals estimate_tokens of all pieces joined with nothing between them. A stream's text is
    tallied this way without ever being joined.
    """

    __slots__ = ("ascii_chars", "other_chars")

    def __init__(self) -> None:
        self.ascii_chars = 0
        self.other_chars = 0

    def add(self, text: str) -> None:
        if text.isascii():  # a flag CPython keeps on every str: no pass over the text
            self.ascii_chars += len(text)
            return
        ascii_chars = len(text.encode("ascii", "ignore"))
        self.ascii_chars += ascii_chars
        self.other_chars += len(text) - ascii_chars

    @property
    def tokens(self) -> int:
        return -(-self.ascii_chars // 4) + self.other_chars


_RESPONSES_DELTAS = frozenset({"response.output_text.delta", "response.reasoning_summary_text.delta",
                               "response.function_call_arguments.delta"})


def tally_chunk_text(tally: TextTally, chunk: Mapping) -> None:
    """Add the completion text of one parsed stream chunk to `tally`: every choice's `delta` (see
    _tally_message) and `text` (Completions), an Anthropic `content_block_delta`'s `text`, `thinking`
    or `partial_json` (tool input), or a Responses text, reasoning summary or arguments delta. Anything
    else (usage, role, finish, pings, errors) holds no text."""
    if not _is_mapping(chunk):
        return
    choices = chunk.get("choices")
    if type(choices) is list:
        for choice in choices:
            if _is_mapping(choice):
                _tally_str(tally, choice.get("text"))
                delta = choice.get("delta")
                if delta and _is_mapping(delta):
                    _tally_message(tally, delta)
    elif chunk.get("type") == "content_block_delta":
        delta = _mapping(chunk.get("delta"))
        for key in _ANTHROPIC_DELTA_TEXT:
            _tally_str(tally, delta.get(key))
    elif chunk.get("type") in _RESPONSES_DELTAS:  # an OpenAI Responses stream relayed as it is
        _tally_str(tally, chunk.get("delta"))


def answer_text_tally(body: object) -> TextTally:
    """The completion text of a non-streamed answer: every choice's `message` (see _tally_message) and
    `text` (Completions), or an Anthropic message's content blocks (`text`, `thinking`, a tool_use's
    `input` as compact JSON)."""
    tally = TextTally()
    if not isinstance(body, Mapping):
        return tally
    content = body.get("content")
    if body.get("type") == "message" and type(content) is list:
        for block in content:
            block = _mapping(block)
            _tally_str(tally, block.get("text"))
            _tally_str(tally, block.get("thinking"))
            if block.get("type") == "tool_use" and "input" in block:
                _tally_str(tally, _compact_json(block.get("input")))
        return tally
    choices = body.get("choices")
    for choice in choices if type(choices) is list else ():
        if isinstance(choice, Mapping):
            _tally_str(tally, choice.get("text"))
            _tally_message(tally, _mapping(choice.get("message")))
    return tally


def estimated_usage(prompt_text: str, completion: TextTally, reported_prompt: Usage | None = None) -> Usage:
    """Usage with the completion counted from its text (source="estimated"). The prompt side is the
    upstream's when it reported one before the answer broke off (Anthropic's message_start), else
    counted from `prompt_text`."""
    if reported_prompt is None:
        return Usage(prompt_tokens=estimate_tokens(prompt_text), completion_tokens=completion.tokens,
                     source=USAGE_ESTIMATED)
    return replace(reported_prompt, completion_tokens=completion.tokens, reasoning_tokens=0,
                   source=USAGE_ESTIMATED)


# Where a Chat Completions message or delta keeps its text. One reasoning field is counted: vLLM renamed
# reasoning_content to reasoning, and a server in between may send both with the same text.
_PLAIN_TEXT = frozenset({"content", "refusal", "reasoning_content"})
_ANTHROPIC_DELTA_TEXT = ("text", "thinking", "partial_json")


def _tally_message(tally: TextTally, message: Mapping) -> None:
    """A message's (or delta's) `content` (a string, or the `text` of its parts), `refusal`, one reasoning
    text (`reasoning_content`, else `reasoning`), and the `function.arguments` of its `tool_calls` (and of a
    legacy `function_call`). Walks the keys present: a delta usually holds one or two."""
    for key, value in message.items():
        if type(value) is str:
            if value and (key in _PLAIN_TEXT or key == "reasoning" and not message.get("reasoning_content")):
                tally.add(value)
        elif value is None:
            continue
        elif key == "content" and type(value) is list:
            for part in value:
                _tally_str(tally, _mapping(part).get("text"))
        elif key == "tool_calls" and type(value) is list:
            for call in value:
                _tally_str(tally, _mapping(_mapping(call).get("function")).get("arguments"))
        elif key == "function_call":
            _tally_str(tally, _mapping(value).get("arguments"))


def _tally_str(tally: TextTally, value: object) -> None:
    if type(value) is str and value:
        tally.add(value)


def _compact_json(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return ""


def _mapping(value: object) -> Mapping:
    if type(value) is dict:
        return value
    return value if isinstance(value, Mapping) else _EMPTY


def _is_mapping(value: object) -> bool:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))

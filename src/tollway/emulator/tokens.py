"""Deterministic token counts and output text.

The emulator has no tokenizer on purpose: tests must be able to predict every number it reports. A
prompt costs ceil(chars / 4) + 4 tokens per message (the +4 stands for role and framing tokens), an image
part a fixed IMAGE_TOKENS, and the output is the words "tok0 tok1 ..." (reasoning "think0 think1 ...").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TOKENS_PER_MESSAGE = 4
IMAGE_TOKENS = 85
IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})


def text_tokens(text: str) -> int:
    """Tokens of a plain string: one per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def content_tokens(content: Any) -> int:
    """Tokens of one message's content: a string, or a list of text / image parts (OpenAI or Anthropic)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += text_tokens(part)
            elif isinstance(part, dict):
                total += _part_tokens(part)
        return total
    return text_tokens(str(content))


def _part_tokens(part: dict) -> int:
    if part.get("type") in IMAGE_PART_TYPES:
        return IMAGE_TOKENS
    text = part.get("text")
    if isinstance(text, str):
        return text_tokens(text)
    nested = part.get("content")  # Anthropic tool_result blocks carry content
    return content_tokens(nested) if nested is not None else 0


def messages_tokens(messages: list[Any], system: Any = None) -> int:
    """Prompt tokens of a chat request: per message ceil(chars/4) + 4; an Anthropic `system` counts as one."""
    total = 0
    if system:
        total += content_tokens(system) + TOKENS_PER_MESSAGE
    for message in messages:
        if isinstance(message, dict):
            total += content_tokens(message.get("content")) + TOKENS_PER_MESSAGE
    return total


def prompt_tokens(prompt: Any) -> int:
    """Prompt tokens of a text-completion or embedding input: a string or a list of strings."""
    if isinstance(prompt, str):
        return text_tokens(prompt)
    if isinstance(prompt, list):
        if prompt and all(isinstance(item, int) for item in prompt):
            return len(prompt)  # already token ids
        return sum(prompt_tokens(item) for item in prompt)
    return 0


def token_text(index: int, word: str = "tok") -> str:
    """The text of output token `index`: a word with a leading space after the first."""
    return f"{word}{index}" if index == 0 else f" {word}{index}"


def output_text(count: int, word: str = "tok") -> str:
    """The full text of `count` output tokens; always the concatenation of token_text pieces."""
    return "".join(token_text(i, word) for i in range(count))


@dataclass(frozen=True, slots=True)
class TokenPlan:
    """What one request will produce, decided before the first byte is sent.

    cached_tokens and cache_write_tokens are shares of prompt_tokens; reasoning_tokens are inside
    completion_tokens, as every dialect except Anthropic's reports them.
    """

    prompt_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    content_tokens: int
    finish_reason: str  # "stop" or "length"

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + self.content_tokens


def plan_output(*, prompt: int, output_tokens: int, reasoning_tokens: int, limit: int | None,
                force_limit: bool, cache_hit_ratio: float, cache_write_ratio: float = 0.0) -> TokenPlan:
    """Split the completion budget between reasoning and content.

    `limit` is the request's max_tokens (reasoning counts against it, as OpenAI's max_completion_tokens
    does). `force_limit` (min_tokens >= limit or ignore_eos) makes the output exactly `limit` long.
    """
    reasoning = reasoning_tokens if limit is None else min(reasoning_tokens, limit)
    room = None if limit is None else limit - reasoning
    if force_limit and room is not None:
        content, finish = room, "length"
    elif room is not None and output_tokens > room:
        content, finish = room, "length"
    else:
        content, finish = output_tokens, "stop"
    cached = math.floor(prompt * cache_hit_ratio)
    written = min(prompt - cached, math.floor(prompt * cache_write_ratio))
    return TokenPlan(prompt, cached, written, reasoning, content, finish)

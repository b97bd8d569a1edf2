"""What routing reads from a request: what it needs (images, tools, JSON), how big it is, what it is about.

Read from the already-parsed body with no tokenizer: the prompt size is an estimate (about 4 characters
a token, 0.6 tokens a Chinese character, 85 tokens an image), good enough to tell a request that fits a
32k window from one that does not. Each feature is computed on first use only, so a priority group that
needs nothing but the capability check pays for nothing else; the prompt estimate is skipped entirely
when the raw body is too small to overflow any candidate's window.
"""

from __future__ import annotations

import re
from typing import Any

from tollway.core.request import ClientRequest

IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})
TOKENS_PER_IMAGE = 85
TOKENS_PER_MESSAGE = 4
TOKENS_PER_CJK_CHAR = 0.6
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_SPACE = re.compile(r"\s+")
_CODE = re.compile(r"```|^\s*(def |class |import |from \S+ import|#include|public static|function\b|const \w+ =|"
                   r"SELECT\b.+\bFROM\b)|[{};]\s*$", re.MULTILINE)
TEXT_SAMPLE_CHARS = 4000  # classifiers read the start and the end of long prompts, not all of them
_UNSET: Any = object()
NO_NEEDS: frozenset[str] = frozenset()


class RequestFeatures:
    """Lazily read features of one request (see the properties)."""

    __slots__ = ("creq", "_needs", "_scan", "_prompt_tokens", "_cjk_share")

    def __init__(self, creq: ClientRequest) -> None:
        self.creq = creq
        self._needs: frozenset[str] | None = None
        self._scan: tuple[list[str], int, str | None] | None = None
        self._prompt_tokens: int | None = None
        self._cjk_share: float | None = None

    @property
    def endpoint(self) -> str:
        return self.creq.endpoint

    @property
    def max_tokens(self) -> int | None:
        return self.creq.max_tokens

    @property
    def needs(self) -> frozenset[str]:
        """Capabilities the request cannot be served without: vision, tools, json."""
        if self._needs is None:
            body = self.creq.body
            needs = set()
            if self.creq.endpoint == "chat" and _has_image(body["messages"]):
                needs.add("vision")
            if body.get("tools") or body.get("functions"):
                needs.add("tools")
            response_format = body.get("response_format")
            if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
                needs.add("json")
            self._needs = frozenset(needs) if needs else NO_NEEDS
        return self._needs

    @property
    def prompt_tokens(self) -> int:
        """Estimated prompt tokens."""
        if self._prompt_tokens is None:
            texts, images, _ = self._texts()
            joined = "\n".join(texts)
            cjk = len(joined) - len(_CJK.sub("", joined)) if not joined.isascii() else 0
            tokens = round((len(joined) - cjk) / 4 + cjk * TOKENS_PER_CJK_CHAR) + images * TOKENS_PER_IMAGE
            self._prompt_tokens = tokens + TOKENS_PER_MESSAGE * self.message_count if self.endpoint == "chat" else tokens
        return self._prompt_tokens

    def prompt_tokens_at_most(self) -> int:
        """A bound of the estimate without reading the text: a character is at most one token and at least
        one body byte, a message's 4 tokens take over 28 bytes of JSON, an image part's 85 over 50."""
        return 2 * self.creq.raw_size

    @property
    def text(self) -> str:
        """The last user turn (the whole prompt outside chat), sampled at both ends when long."""
        texts, _, last_user = self._texts()
        return _sample(last_user if last_user is not None else "\n".join(texts))

    @property
    def cjk_share(self) -> float:
        """Share of non-space characters that are Chinese, Japanese or Korean."""
        if self._cjk_share is None:
            joined = "\n".join(self._texts()[0])
            if joined.isascii():
                self._cjk_share = 0.0
            else:
                non_space = len(_SPACE.sub("", joined))
                self._cjk_share = (len(joined) - len(_CJK.sub("", joined))) / non_space if non_space else 0.0
        return self._cjk_share

    @property
    def topics(self) -> frozenset[str]:
        """What the request is recognisably about, matched against deployments' strong_in."""
        found = set()
        if self.cjk_share > 0.5:
            found.add("zh")
        if _CODE.search(self.text):
            found.add("code")
        return frozenset(found)

    @property
    def tool_count(self) -> int:
        tools = self.creq.body.get("tools") or self.creq.body.get("functions") or []
        return len(tools) if isinstance(tools, list) else 0

    @property
    def message_count(self) -> int:
        return len(self.creq.body.get("messages") or ()) if self.endpoint == "chat" else 1

    @property
    def user(self) -> str | None:
        """The body's `user`, for sticky A/B arms."""
        user = self.creq.body.get("user")
        return user if isinstance(user, str) else None

    @property
    def reasoning_effort(self) -> str | None:
        """"low" | "medium" | "high" when the request asks for a reasoning effort (or turns thinking on)."""
        body = self.creq.body
        effort = body.get("reasoning_effort")
        if isinstance(effort, str):
            return effort.lower()
        reasoning = body.get("reasoning")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
            return reasoning["effort"].lower()
        thinking = body.get("thinking")
        if (isinstance(thinking, dict) and thinking.get("type") == "enabled") or body.get("enable_thinking") is True:
            return "high"
        return None

    def describe_needs(self) -> str:
        return ", ".join(sorted(self.needs)) or "nothing special"

    def _texts(self) -> tuple[list[str], int, str | None]:
        if self._scan is None:
            self._scan = _scan(self.creq)
        return self._scan


def request_features(creq: ClientRequest) -> RequestFeatures:
    """The request's features, computed lazily once and shared by the router and the ledger row."""
    if creq.features is None:
        creq.features = RequestFeatures(creq)
    return creq.features


def _has_image(messages: list[Any]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES:
                    return True
    return False


def _scan(creq: ClientRequest) -> tuple[list[str], int, str | None]:
    """Every text part, the number of image parts, and the last user message's text."""
    body = creq.body
    if creq.endpoint != "chat":
        value = body.get("prompt" if creq.endpoint == "completions" else "input")
        if isinstance(value, str):
            return [value], 0, None
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else [], 0, None
    texts: list[str] = []
    images = 0
    last_user: str | None = None
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            parts = [content]
        elif isinstance(content, list):
            parts = []
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") in IMAGE_PART_TYPES:
                    images += 1
                elif isinstance(part.get("text"), str):
                    parts.append(part["text"])
        else:
            parts = []
        texts.extend(parts)
        if message.get("role") == "user":
            last_user = "\n".join(parts)
    return texts, images, last_user


def _sample(text: str) -> str:
    if len(text) <= TEXT_SAMPLE_CHARS:
        return text
    half = TEXT_SAMPLE_CHARS // 2
    return text[:half] + "\n" + text[-half:]

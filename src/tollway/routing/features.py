"""What routing reads from a request: what it needs (images, tools, JSON), how big it is, what it is about.

Read once per request from the already-parsed body, with no tokenizer: the prompt size is an estimate
(about 4 characters a token, 0.6 tokens a Chinese character, 85 tokens an image), good enough to tell a
request that fits a 32k window from one that does not. Everything here costs microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tollway.gateway.request import ClientRequest

IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})
TOKENS_PER_IMAGE = 85
TOKENS_PER_MESSAGE = 4
TOKENS_PER_CJK_CHAR = 0.6
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_SPACE = re.compile(r"\s+")
_CODE = re.compile(r"```|^\s*(def |class |import |from \S+ import|#include|public static|function\b|const \w+ =|"
                   r"SELECT\b.+\bFROM\b)|[{};]\s*$", re.MULTILINE)
TEXT_SAMPLE_CHARS = 4000  # classifiers read the start and the end of long prompts, not all of them


@dataclass(slots=True)
class RequestFeatures:
    endpoint: str
    prompt_tokens: int            # estimated
    max_tokens: int | None
    needs: frozenset[str]         # capabilities the request cannot be served without: vision, tools, json
    text: str                     # the last user turn (sampled when long), for the complexity classifiers
    cjk_share: float              # share of non-space characters that are Chinese/Japanese/Korean
    tool_count: int
    message_count: int
    reasoning_effort: str | None  # "low" | "medium" | "high" when the request asks for it
    user: str | None              # the body's `user`, for sticky A/B arms

    @property
    def topics(self) -> frozenset[str]:
        """What the request is recognisably about, matched against deployments' strong_in."""
        found = set()
        if self.cjk_share > 0.5:
            found.add("zh")
        if _CODE.search(self.text):
            found.add("code")
        return frozenset(found)

    def describe_needs(self) -> str:
        return ", ".join(sorted(self.needs)) or "nothing special"


def request_features(creq: ClientRequest) -> RequestFeatures:
    body = creq.body
    texts, images, last_user = _texts(creq)
    joined = "\n".join(texts)
    cjk = len(joined) - len(_CJK.sub("", joined))
    non_space = len(_SPACE.sub("", joined))
    prompt_tokens = round((len(joined) - cjk) / 4 + cjk * TOKENS_PER_CJK_CHAR) + images * TOKENS_PER_IMAGE
    prompt_tokens += TOKENS_PER_MESSAGE * len(body.get("messages") or ()) if creq.endpoint == "chat" else 0
    tools = body.get("tools") or body.get("functions") or []
    return RequestFeatures(
        endpoint=creq.endpoint, prompt_tokens=prompt_tokens, max_tokens=creq.max_tokens,
        needs=_needs(body, images, tools), text=_sample(last_user if last_user is not None else joined),
        cjk_share=cjk / non_space if non_space else 0.0, tool_count=len(tools) if isinstance(tools, list) else 0,
        message_count=len(body.get("messages") or ()) if creq.endpoint == "chat" else 1,
        reasoning_effort=_reasoning_effort(body), user=body.get("user") if isinstance(body.get("user"), str) else None,
    )


def _texts(creq: ClientRequest) -> tuple[list[str], int, str | None]:
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
        parts: list[str] = []
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") in IMAGE_PART_TYPES:
                    images += 1
                elif isinstance(part.get("text"), str):
                    parts.append(part["text"])
        texts.extend(parts)
        if message.get("role") == "user":
            last_user = "\n".join(parts)
    return texts, images, last_user


def _needs(body: dict[str, Any], images: int, tools: object) -> frozenset[str]:
    needs = set()
    if images:
        needs.add("vision")
    if tools:
        needs.add("tools")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        needs.add("json")
    return frozenset(needs)


def _reasoning_effort(body: dict[str, Any]) -> str | None:
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        return effort.lower()
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        return reasoning["effort"].lower()
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled" or body.get("enable_thinking") is True:
        return "high"
    return None


def _sample(text: str) -> str:
    if len(text) <= TEXT_SAMPLE_CHARS:
        return text
    half = TEXT_SAMPLE_CHARS // 2
    return text[:half] + "\n" + text[-half:]

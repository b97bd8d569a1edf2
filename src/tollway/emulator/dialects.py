"""What differs between the OpenAI-compatible dialects, as data.

Each entry records a fact from the provider's own documents (docs/emulator.md names the source of
each one) so the response builders stay dialect-agnostic: where streamed usage goes, whether a role-only
first chunk is sent, the reasoning text field, id prefixes and extra top-level fields.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

# Where a stream reports usage:
#   final_if_asked  - an extra `choices: []` chunk before [DONE], only with stream_options.include_usage
#   final_always    - that extra chunk on every stream (llama.cpp builds since PR #15444)
#   finish_chunk    - top-level `usage` on the chunk that carries finish_reason, always (DeepSeek, GLM)
#   in_choice       - `choices[0].usage` on the finish chunk, always (Kimi)
StreamUsage = Literal["final_if_asked", "final_always", "finish_chunk", "in_choice"]
# How the assistant role is announced: a role-only first chunk, or `role` inside every delta.
RoleStyle = Literal["separate", "every_delta"]


@dataclass(frozen=True)
class Dialect:
    name: str
    stream_usage: StreamUsage
    role_style: RoleStyle
    reasoning_field: str | None  # None: reasoning is counted but its text is not returned
    null_usage_on_chunks: bool = False  # content chunks carry "usage": null when usage was asked for
    stream_options_default_usage: bool = False  # vLLM: sending stream_options at all turns include_usage on
    continuous_usage: bool = False  # supports stream_options.continuous_usage_stats
    role_chunk_content: str | None = ""  # content value in the role-only chunk
    finish_delta_content: bool = False  # finish chunk delta is {"content": ""} instead of {}
    id_prefix: str = "chatcmpl-"
    metrics: bool = False  # serves Prometheus text at /{dialect}/metrics
    keepalive: bool = False  # ": keep-alive" SSE comments / blank lines while queued (DeepSeek)
    completions_zero_usage: bool = False  # Ollama /v1/completions: zero usage on every content chunk

    def new_id(self) -> str:
        return f"{self.id_prefix}{uuid.uuid4().hex[:24]}" if self.id_prefix else str(uuid.uuid4())

    def stream_include_usage(self, stream_options: object) -> bool:
        """Whether the client asked for streamed usage, by this dialect's reading of stream_options."""
        if not isinstance(stream_options, dict):
            return False
        return bool(stream_options.get("include_usage", self.stream_options_default_usage))

    def stream_continuous_usage(self, stream_options: object) -> bool:
        return self.continuous_usage and isinstance(stream_options, dict) and bool(
            stream_options.get("continuous_usage_stats", False))


DIALECTS: dict[str, Dialect] = {
    "openai": Dialect("openai", "final_if_asked", "separate", None, null_usage_on_chunks=True),
    "deepseek": Dialect("deepseek", "finish_chunk", "separate", "reasoning_content", null_usage_on_chunks=True,
                        finish_delta_content=True, id_prefix="", keepalive=True),
    "qwen": Dialect("qwen", "final_if_asked", "separate", "reasoning_content", null_usage_on_chunks=True),
    "kimi": Dialect("kimi", "in_choice", "separate", "reasoning_content", id_prefix="cmpl-"),
    "glm": Dialect("glm", "finish_chunk", "every_delta", "reasoning_content", id_prefix=""),
    "vllm": Dialect("vllm", "final_if_asked", "separate", "reasoning", stream_options_default_usage=True,
                    continuous_usage=True, metrics=True),
    "sglang": Dialect("sglang", "final_if_asked", "separate", "reasoning_content", null_usage_on_chunks=True,
                      continuous_usage=True, metrics=True),
    "lmdeploy": Dialect("lmdeploy", "final_if_asked", "every_delta", "reasoning_content",
                        null_usage_on_chunks=True, metrics=True),
    "llamacpp": Dialect("llamacpp", "final_always", "separate", "reasoning_content", role_chunk_content=None,
                        metrics=True),
    "ollama": Dialect("ollama", "final_if_asked", "every_delta", "reasoning", completions_zero_usage=True),
}

# Anthropic Messages is its own protocol (anthropic_messages.py); this entry only names it for shared code.
ANTHROPIC = Dialect("anthropic", "finish_chunk", "separate", "thinking", id_prefix="msg_")

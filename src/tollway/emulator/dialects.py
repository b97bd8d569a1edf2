"""How each OpenAI-compatible dialect shapes its answers, as data: the emulator's side of a dialect.

The names and the facts the gateway shares (the reasoning field, whether /metrics is served) come from
the dialect registry (tollway.providers); what only a server's answer shows is recorded here, each fact
from the provider's own documents (docs/emulator.md names the source of each one), so the response
builders stay dialect-agnostic: where streamed usage goes, whether a role-only first chunk is sent, id
prefixes and extra top-level fields.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from tollway.providers import registry
from tollway.providers.dialect import Dialect as WireDialect

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
    wire: WireDialect  # the registry's record: name, reasoning field
    stream_usage: StreamUsage
    role_style: RoleStyle
    null_usage_on_chunks: bool = False  # content chunks carry "usage": null when usage was asked for
    stream_options_default_usage: bool = False  # vLLM: sending stream_options at all turns include_usage on
    continuous_usage: bool = False  # supports stream_options.continuous_usage_stats
    role_chunk_content: str | None = ""  # content value in the role-only chunk
    finish_delta_content: bool = False  # finish chunk delta is {"content": ""} instead of {}
    id_prefix: str = "chatcmpl-"
    keepalive: bool = False  # ": keep-alive" SSE comments / blank lines while queued (DeepSeek)
    completions_zero_usage: bool = False  # Ollama /v1/completions: zero usage on every content chunk

    @property
    def name(self) -> str:
        return self.wire.name

    @property
    def reasoning_field(self) -> str | None:
        """None: reasoning is counted but its text is not returned."""
        return self.wire.reasoning_field

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


def _habits(name: str, stream_usage: StreamUsage, role_style: RoleStyle, **habits: Any) -> Dialect:
    return Dialect(registry.DIALECTS[name], stream_usage, role_style, **habits)


_RECORDED: dict[str, Dialect] = {
    "openai": _habits("openai", "final_if_asked", "separate", null_usage_on_chunks=True),
    "deepseek": _habits("deepseek", "finish_chunk", "separate", null_usage_on_chunks=True, finish_delta_content=True,
                        id_prefix="", keepalive=True),
    "qwen": _habits("qwen", "final_if_asked", "separate", null_usage_on_chunks=True),
    "kimi": _habits("kimi", "in_choice", "separate", id_prefix="cmpl-"),
    "glm": _habits("glm", "finish_chunk", "every_delta", id_prefix=""),
    "vllm": _habits("vllm", "final_if_asked", "separate", stream_options_default_usage=True, continuous_usage=True),
    "sglang": _habits("sglang", "final_if_asked", "separate", null_usage_on_chunks=True, continuous_usage=True),
    "lmdeploy": _habits("lmdeploy", "final_if_asked", "every_delta", null_usage_on_chunks=True),
    "llamacpp": _habits("llamacpp", "final_always", "separate", role_chunk_content=None),
    "ollama": _habits("ollama", "final_if_asked", "every_delta", completions_zero_usage=True),
}
# every Chat Completions dialect the gateway can call is emulated; one without recorded habits answers as
# OpenAI does (Azure: OpenAI's bodies at deployment URLs)
DIALECTS: dict[str, Dialect] = {
    name: _RECORDED.get(name) or _habits(name, "final_if_asked", "separate", null_usage_on_chunks=True)
    for name in registry.UPSTREAM_NAMES if registry.DIALECTS[name].transforms.passthrough
}

# Anthropic Messages and Gemini generateContent are their own protocols (anthropic_messages.py,
# gemini_answers.py); these entries only name them for shared code.
ANTHROPIC = _habits("anthropic", "finish_chunk", "separate", id_prefix="msg_")
GEMINI = _habits("gemini", "finish_chunk", "separate", id_prefix="")

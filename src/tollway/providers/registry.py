"""Every provider wire dialect tollway knows, by name: the one list.

Config validation, the routing table, the stream relay, spillover, the emulator and the contract tests
all read this mapping, so a dialect added here (and in its own module) is known everywhere at once.
Lookups by name happen at config load and in tools; a request reads the Dialect its deployment carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tollway.providers import (
    anthropic,
    azure,
    deepseek,
    gemini,
    glm,
    kimi,
    llamacpp,
    lmdeploy,
    ollama,
    openai,
    qwen,
    sglang,
    vllm,
)
from tollway.providers.dialect import Dialect

DIALECTS: Mapping[str, Dialect] = MappingProxyType({d.name: d for d in (
    openai.DIALECT, deepseek.DIALECT, qwen.DIALECT, kimi.DIALECT, glm.DIALECT,
    vllm.DIALECT, sglang.DIALECT, lmdeploy.DIALECT, llamacpp.DIALECT, ollama.DIALECT,
    anthropic.DIALECT, gemini.DIALECT, azure.DIALECT,
)})
NAMES: tuple[str, ...] = tuple(DIALECTS)
UPSTREAM_NAMES: tuple[str, ...] = tuple(name for name, d in DIALECTS.items() if d.upstream)
SELF_HOSTED_NAMES: tuple[str, ...] = tuple(name for name, d in DIALECTS.items() if d.self_hosted)


def dialect_named(name: str) -> Dialect:
    """The dialect called `name`; a ValueError naming the known ones otherwise."""
    found = DIALECTS.get(name)
    if found is None:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(NAMES)}")
    return found

"""Usage by dialect name, for code that holds a name rather than a Dialect (tools, reports, tests).

The request path reads `deployment.dialect.usage_from_body(...)` directly; these helpers look the
dialect up first, and an unknown name is a programming error (ValueError).
"""

from __future__ import annotations

from collections.abc import Mapping

from tollway.core.usage import Usage
from tollway.providers.anthropic import merge_stream as merge_anthropic_stream
from tollway.providers.registry import NAMES as DIALECTS
from tollway.providers.registry import dialect_named

__all__ = ["DIALECTS", "StreamUsage", "merge_anthropic_stream", "usage_from_body", "usage_from_chunk"]


def usage_from_body(dialect: str, body: Mapping) -> Usage | None:
    """Usage of a non-streamed response (Chat Completions, Responses, or an Anthropic message).

    None when the body carries no usage. Missing or odd fields count as 0; never raises on odd shapes.
    """
    return dialect_named(dialect).usage_from_body(body)


def usage_from_chunk(dialect: str, chunk: Mapping) -> Usage | None:
    """Usage carried by one parsed stream chunk (or Anthropic event); None if it carries none.

    Anthropic splits it (message_start: prompt, message_delta: cumulative output); StreamUsage combines them.
    """
    return dialect_named(dialect).usage_from_chunk(chunk)


class StreamUsage:
    """Follows one stream's chunks and keeps the usage they report so far, for any dialect: the final
    usage once reported, else the prompt-only usage reported before it (Anthropic's message_start)."""

    __slots__ = ("dialect", "_reader")

    def __init__(self, dialect: str) -> None:
        self._reader = dialect_named(dialect).stream_usage()
        self.dialect = dialect

    def observe(self, chunk: Mapping) -> None:
        """Feed every parsed chunk/event; cheap for chunks without usage."""
        self._reader.observe(chunk)

    @property
    def usage(self) -> Usage | None:
        reader = self._reader
        return reader.usage if reader.usage is not None else reader.reported_prompt

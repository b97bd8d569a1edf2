"""When each output chunk may leave: the TTFT/TPOT schedule, chunking, stalls, cuts and filters.

Token t (0-based, reasoning first) is ready at ttft + t * tpot seconds after the request arrived; a
chunk leaves when its last token is ready. Scheduling against one start time (not sleeping per chunk)
keeps the measured TTFT and TPOT within a few percent of the configured values, whatever the chunk size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final, Literal

from tollway.emulator.profiles import Fault, ModelProfile
from tollway.emulator.tokens import TokenPlan, token_text

REASONING: Final = "reasoning"  # Final: the literal types Piece.kind takes
CONTENT: Final = "content"


@dataclass(frozen=True, slots=True)
class Piece:
    """One chunk's worth of output."""

    kind: Literal["reasoning", "content"]
    text: str
    tokens: int
    first_index: int  # index of its first token within its kind
    ready_at: float  # seconds after arrival


@dataclass(frozen=True, slots=True)
class Schedule:
    pieces: list[Piece]
    emitted_reasoning: int  # tokens actually produced (what usage must report)
    emitted_content: int
    finish_reason: str
    cut: bool  # the stream is dropped after the last piece, without its end
    done_at: float  # seconds after arrival when the answer is complete

    @property
    def emitted(self) -> int:
        return self.emitted_reasoning + self.emitted_content


def build_schedule(plan: TokenPlan, profile: ModelProfile, fault: Fault | None, *,
                   reasoning_visible: bool) -> Schedule:
    """The chunks of one answer, shaped by a stall / cut_stream / content_filter fault if one applies.

    Reasoning the dialect does not show (OpenAI) still takes its tokens' time before the first content.
    """
    kind = fault.kind if fault else None
    after = (fault.after_tokens or 0) if fault else 0
    total = min(plan.completion_tokens, after) if kind in ("cut_stream", "content_filter") else plan.completion_tokens
    stall_at = after if kind == "stall" else None
    stall_s = (fault.stall_s or 0.0) if fault is not None and kind == "stall" else 0.0
    ttft = profile.ttft_ms / 1000
    tpot = profile.tpot_ms / 1000

    def ready(index: int) -> float:
        return ttft + index * tpot + (stall_s if stall_at is not None and index >= stall_at else 0.0)

    reasoning = min(plan.reasoning_tokens, total)
    pieces: list[Piece] = []
    if reasoning_visible:
        pieces += _chunks(REASONING, 0, reasoning, 0, profile.tokens_per_chunk, stall_at, ready)
    pieces += _chunks(CONTENT, reasoning, total, reasoning, profile.tokens_per_chunk, stall_at, ready)
    finish = "content_filter" if kind == "content_filter" else plan.finish_reason
    done_at = ready(total - 1) if total else ttft
    return Schedule(pieces, reasoning, total - reasoning, finish, kind == "cut_stream", done_at)


def _chunks(kind: Literal["reasoning", "content"], begin: int, end: int, offset: int, size: int,
            stall_at: int | None, ready) -> list[Piece]:
    """Tokens [begin, end) (global indices) of one kind in chunks of `size`, split at the stall point."""
    word = "think" if kind == REASONING else "tok"
    pieces = []
    index = begin
    while index < end:
        stop = min(end, index + size)
        if stall_at is not None and index < stall_at < stop:
            stop = stall_at
        text = "".join(token_text(i - offset, word) for i in range(index, stop))
        pieces.append(Piece(kind, text, stop - index, index - offset, ready(stop - 1)))
        index = stop
    return pieces


async def wait_until(start: float, offset: float) -> None:
    """Sleep until `offset` seconds after the loop time `start`."""
    loop = asyncio.get_running_loop()
    delay = start + offset - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)

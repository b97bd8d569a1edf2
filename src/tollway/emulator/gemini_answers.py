"""Gemini API answers: generateContent's GenerateContentResponse and streamGenerateContent's SSE stream.

What accounting depends on, as Google documents it: usageMetadata.promptTokenCount includes
cachedContentTokenCount; thoughtsTokenCount is reported apart from candidatesTokenCount (both billed as
output); thought parts carry `"thought": true`; a stream (alt=sse) is a sequence of partial responses,
each `data: {...}` framed with CRLF line ends, with no [DONE]; the last one carries finishReason and the
full usageMetadata. A prompt blocked by safety answers 200 with `promptFeedback.blockReason` and no
candidates. When the request declares functions and the last turn is the user's, the answer is
functionCall parts for the first declared functions (agent_traffic.py says how many; args an instance of
the declaration's schema). Gemini sends a call whole, never as argument deltas.
Sources: https://ai.google.dev/api/generate-content , https://ai.google.dev/gemini-api/docs/thinking ,
https://ai.google.dev/gemini-api/docs/function-calling (retrieved 2026-12-06).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.openai_answers import SSE_HEADERS, Answer, drop_connection, full_text
from tollway.emulator.pacing import REASONING, wait_until
from tollway.emulator.usage_shapes import Counts

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
BLOCKED = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}}


def usage_metadata(counts: Counts) -> dict[str, Any]:
    """usageMetadata: prompt includes cached; thoughts apart from candidates."""
    candidates = counts.completion - counts.reasoning
    meta: dict[str, Any] = {"promptTokenCount": counts.prompt, "candidatesTokenCount": candidates,
                            "totalTokenCount": counts.prompt + counts.completion,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": counts.prompt}]}
    if counts.cached:
        meta["cachedContentTokenCount"] = counts.cached
    if counts.reasoning:
        meta["thoughtsTokenCount"] = counts.reasoning
    return meta


def _response(answer: Answer, parts: list[dict], finish: str | None, counts: Counts, response_id: str) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage_metadata(counts), "modelVersion": answer.model,
            "responseId": response_id}


def _call_parts(answer: Answer) -> list[dict]:
    return [{"functionCall": {"name": call.name, "args": call.arguments}} for call in answer.calls]


async def write_generate(request: web.Request, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
    await wait_until(answer.start, answer.schedule.done_at)
    if answer.schedule.cut:
        drop_connection(request)
        return web.StreamResponse()
    schedule = answer.schedule
    parts: list[dict] = []
    if schedule.emitted_reasoning:
        parts.append({"text": full_text(schedule, REASONING), "thought": True})
    parts.extend(_call_parts(answer) or [{"text": full_text(schedule, "content")}])
    body = _response(answer, parts, FINISH_REASONS[schedule.finish_reason], answer.final_counts, _id())
    return web.Response(body=orjson.dumps(body), headers={**headers, "Content-Type": "application/json"})


async def write_generate_stream(request: web.Request, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
    """One partial response per piece, the last with finishReason; usage grows as the answer does."""
    resp = web.StreamResponse(status=200, headers={**headers, **SSE_HEADERS})
    await resp.prepare(request)
    schedule, response_id = answer.schedule, _id()
    reasoning = content = 0
    for piece in schedule.pieces:
        await wait_until(answer.start, piece.ready_at)
        if piece.kind == REASONING:
            reasoning += piece.tokens
            part: dict[str, Any] = {"text": piece.text, "thought": True}
        elif answer.calls:
            content += piece.tokens
            continue  # the call goes out whole at the end
        else:
            content += piece.tokens
            part = {"text": piece.text}
        await resp.write(_event(_response(answer, [part], None, answer.counts(reasoning, content), response_id)))
    if schedule.cut:
        drop_connection(request)
        return resp
    await wait_until(answer.start, schedule.done_at)
    last = _call_parts(answer) or [{"text": ""}]
    await resp.write(_event(_response(answer, last, FINISH_REASONS[schedule.finish_reason], answer.final_counts,
                                      response_id)))
    await resp.write_eof()
    return resp


def blocked_response(headers: dict[str, str]) -> web.Response:
    """A prompt refused by the safety filter: 200, promptFeedback.blockReason, no candidates."""
    body = {**BLOCKED, "usageMetadata": {"promptTokenCount": 0, "totalTokenCount": 0}}
    return web.Response(body=orjson.dumps(body), headers={**headers, "Content-Type": "application/json"})


def _event(body: dict) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\r\n\r\n"


def _id() -> str:
    return uuid.uuid4().hex[:22]

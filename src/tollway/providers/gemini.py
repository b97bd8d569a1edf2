"""Google's Gemini API, called natively (generateContent / streamGenerateContent?alt=sse).

Native rather than Google's OpenAI-compatible endpoint because accounting must be exact: the native
usageMetadata carries cachedContentTokenCount and thoughtsTokenCount, while the compatible endpoint
has been seen to omit `prompt_tokens_details` (cached tokens) from its usage
(https://github.com/openai/openai-python/issues/2544). Translated answers carry Chat Completions usage
(gemini_wire.chat_usage), so the shared OpenAI readers read them; a native body's usageMetadata is read
here. 429 RESOURCE_EXHAUSTED is a rate limit (ERRORS below); the transforms are in
gemini_wire.py. Auth: `x-goog-api-key` (https://ai.google.dev/api, retrieved 2026-12-06).
"""

from __future__ import annotations

from collections.abc import Mapping

from tollway.core.usage import Usage
from tollway.providers.dialect import AuthStyle, Dialect, ErrorMeaning
from tollway.providers.failure import FailureKind
from tollway.providers.gemini_wire import GenerateStream, chat_completion, chat_usage, generate_request
from tollway.providers.openai_compatible import LastUsage, is_role_preamble, openai_usage, usage_readers
from tollway.providers.usage_fields import is_mapping

_from_body, _from_chunk = usage_readers(openai_usage)


def usage_from_body(body: Mapping) -> Usage | None:
    """Usage of a translated answer, or of a native one (its usageMetadata)."""
    if is_mapping(body) and is_mapping(body.get("usageMetadata")):
        return openai_usage(chat_usage(body["usageMetadata"]), body)
    return _from_body(body)


def usage_from_chunk(chunk: Mapping) -> Usage | None:
    if is_mapping(chunk) and is_mapping(chunk.get("usageMetadata")):
        return openai_usage(chat_usage(chunk["usageMetadata"]), chunk)
    return _from_chunk(chunk)


def route(endpoint: str, model: str, version: str | None) -> str:
    """`models/{model}:generateContent`, or the streaming method with SSE framing."""
    if endpoint == "chat":
        return f"models/{model}:generateContent"
    if endpoint == "chat:stream":
        return f"models/{model}:streamGenerateContent?alt=sse"
    raise KeyError(endpoint)


class GenerateTransforms:
    """Chat Completions <-> Gemini generateContent."""

    passthrough = False

    def request(self, endpoint: str, payload: bytes, max_output: int) -> bytes:
        return generate_request(payload, max_output)

    def response(self, endpoint: str, body: bytes) -> bytes:
        return chat_completion(body)

    def stream(self) -> GenerateStream:
        return GenerateStream()


# Google's own texts (https://ai.google.dev/gemini-api/docs/troubleshooting): a bad key is a 400
# INVALID_ARGUMENT; a 429 RESOURCE_EXHAUSTED says "exceeded your current quota" for a rate limit (which the
# shared markers would read as an empty balance); a too-long prompt names the token maximum.
ERRORS = ErrorMeaning(messages={"api key not valid": FailureKind.UPSTREAM_AUTH,
                                "exceeded your current quota": FailureKind.RATE_LIMITED,
                                "exceeds the maximum number of tokens allowed": FailureKind.CONTEXT_LENGTH})

DIALECT = Dialect(
    name="gemini", auth=AuthStyle.GOOG_API_KEY, paths={"chat": "models/{model}:generateContent"},
    usage_from_body=usage_from_body, usage_from_chunk=usage_from_chunk,
    stream_usage=lambda: LastUsage(usage_from_chunk),
    errors=ERRORS, is_preamble=is_role_preamble,
    reasoning_field="reasoning_content", default_base_url="https://generativelanguage.googleapis.com/v1beta",
    transforms=GenerateTransforms(), route=route,
)

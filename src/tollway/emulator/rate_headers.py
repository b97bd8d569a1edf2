"""Response headers a provider sends about rate limits and request ids.

Gateways read these to pace themselves and to log upstream request ids; only the providers that document
them get them (OpenAI x-ratelimit-*, Kimi X-RateLimit-*, Anthropic anthropic-ratelimit-*; DeepSeek, Qwen,
GLM and the self-hosted servers send none). Limits are nominal: remaining counts this model's requests
in the last minute.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

REQUESTS_PER_MINUTE = 10_000
TOKENS_PER_MINUTE = 10_000_000


def rate_headers(dialect: str, recent_requests: int, prompt_tokens: int, limited: bool = False,
                 retry_after_s: float | None = None) -> dict[str, str]:
    """Headers for one answer; `limited` marks a 429 (remaining 0), `retry_after_s` adds Retry-After."""
    remaining_requests = 0 if limited else max(0, REQUESTS_PER_MINUTE - recent_requests)
    remaining_tokens = 0 if limited else max(0, TOKENS_PER_MINUTE - prompt_tokens)
    reset_s = retry_after_s if retry_after_s is not None else 1.0
    headers: dict[str, str] = {}
    if dialect == "openai":
        headers.update({
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "x-ratelimit-limit-requests": str(REQUESTS_PER_MINUTE),
            "x-ratelimit-limit-tokens": str(TOKENS_PER_MINUTE),
            "x-ratelimit-remaining-requests": str(remaining_requests),
            "x-ratelimit-remaining-tokens": str(remaining_tokens),
            "x-ratelimit-reset-requests": _duration(reset_s),
            "x-ratelimit-reset-tokens": _duration(reset_s),
        })
    elif dialect == "kimi":
        headers.update({"X-RateLimit-Limit": str(REQUESTS_PER_MINUTE), "X-RateLimit-Remaining":
                        str(remaining_requests), "X-RateLimit-Reset": str(math.ceil(reset_s))})
    elif dialect == "anthropic":
        reset = (datetime.now(timezone.utc) + timedelta(seconds=reset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers["request-id"] = f"req_{uuid.uuid4().hex[:24]}"
        for kind, limit, remaining in (("requests", REQUESTS_PER_MINUTE, remaining_requests),
                                       ("tokens", TOKENS_PER_MINUTE, remaining_tokens),
                                       ("input-tokens", TOKENS_PER_MINUTE, remaining_tokens),
                                       ("output-tokens", TOKENS_PER_MINUTE, 0 if limited else TOKENS_PER_MINUTE)):
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset
    if retry_after_s is not None:
        headers["Retry-After"] = _seconds(retry_after_s)
    return headers


def _duration(seconds: float) -> str:
    """OpenAI's reset format: '1s', '250ms'."""
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"


def _seconds(seconds: float) -> str:
    """Retry-After is an integer number of seconds; round a fractional value up."""
    return str(math.ceil(seconds))

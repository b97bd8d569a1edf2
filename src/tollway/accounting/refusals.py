"""Admission's answers when it says no, in OpenAI's error shape, each saying what to do next.

429s that waiting a few seconds will not fix (a spent budget, a request larger than a whole minute's
token limit) carry `x-should-retry: false`, which the official OpenAI SDKs honour, so clients do not
retry them in vain.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tollway.core.errors import GatewayError

_NO_RETRY = {"x-should-retry": "false"}


def key_expired() -> GatewayError:
    return GatewayError(401, "This API key has expired. Ask the gateway's operator for a new one.",
                        "authentication_error", "key_expired")


def key_rotated() -> GatewayError:
    return GatewayError(401, "This API key's secret was rotated and its grace period has ended. Use the new "
                        "secret.", "authentication_error", "key_rotated")


def key_revoked() -> GatewayError:
    return GatewayError(401, "This API key has been revoked. Ask the gateway's operator for a new one.",
                        "authentication_error", "key_revoked")


def model_not_allowed(model: str, allowed: list[str]) -> GatewayError:
    return GatewayError(403, f"This API key may not use model '{model}'. It may use: {', '.join(sorted(allowed))}.",
                        "permission_error", "model_not_allowed", "model")


def residency_not_met(model: str, residency: list[str], found: list[str]) -> GatewayError:
    return GatewayError(403, f"This API key may only send data to {', '.join(sorted(residency))}, and no deployment "
                             f"of model '{model}' is there (they are in {', '.join(sorted(set(found)))}).",
                        "permission_error", "residency_not_met", "model")


def budget_exceeded(who: str, window: str, limit: str, spent: str, reserved: str, hold: str,
                    resets_at: str, fits: MaxTokensFit | None = None) -> GatewayError:
    held = f" and ${reserved} is held by requests in flight" if reserved not in ("0", "0.00") else ""
    return GatewayError(429, f"Budget exceeded: the {window} budget of {who} is ${limit}; ${spent} is spent{held}, "
                             f"and this request may cost up to ${hold}.{_max_tokens_advice(fits)} "
                             f"It resets at {resets_at}.",
                        "rate_limit_error", "budget_exceeded", headers=_NO_RETRY)


class MaxTokensFit(NamedTuple):
    """What would fit the budget's room now: the largest max_tokens (0: none), and whether the client set one."""

    largest: int
    client_set: bool
    room: str  # USD left in the budget, for the message


def _max_tokens_advice(fits: MaxTokensFit | None) -> str:
    """The worst case is held, and without max_tokens that is the model's longest answer: say what fits."""
    if fits is None:
        return ""
    if fits.largest < 1:
        return (f" Even with max_tokens 1 its prompt could cost more than the ${fits.room} left: shorten the "
                f"prompt or wait.")
    if fits.client_set:
        return f" Lower max_tokens to at most {fits.largest} and it fits now."
    return (f" Without max_tokens the longest answer the model can give is held; set max_tokens to at most "
            f"{fits.largest} and it fits now.")


def rate_limited(who: str, measure: str, limit: int, retry_after_ms: int, tokens: int = 0) -> GatewayError:
    unit = "requests" if measure == "rpm" else "tokens"
    if retry_after_ms < 0:
        return GatewayError(429, f"Rate limit: {who} allows {limit} tokens per minute, and this request alone is "
                                 f"estimated at {tokens} tokens (prompt + max_tokens). Lower max_tokens.",
                            "rate_limit_error", "rate_limited", headers=_NO_RETRY)
    seconds = max(1, math.ceil(retry_after_ms / 1000))
    return GatewayError(429, f"Rate limit: {who} allows {limit} {unit} per minute. Retry in {seconds} s.",
                        "rate_limit_error", "rate_limited", headers={"Retry-After": str(seconds)})


def deployments_busy(model: str, names: list[str], retry_after_ms: int) -> GatewayError:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after_ms / 1000)))} if retry_after_ms >= 0 else {}
    return GatewayError(429, f"Every deployment of model '{model}' is at its configured rate limit "
                             f"({', '.join(names)}: limits.deployments). Retry shortly.",
                        "rate_limit_error", "rate_limited", headers=headers)


def limits_unavailable(message: str) -> GatewayError:
    return GatewayError(503, message, "service_unavailable", "limits_unavailable")

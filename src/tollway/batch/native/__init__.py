"""Native batch upstreams: the providers' own batch APIs, at their batch prices.

`client_for` answers the client for a deployment whose provider has a batch API (OpenAI, DashScope for
Qwen, Anthropic), None for one without (DeepSeek, Kimi, GLM, Gemini, Azure, self-hosted servers: their
lines are scheduled by tollway instead). A client handles one deployment's share of a batch, one
endpoint at a time: submit, poll the state, read the results, cancel. Its results keep the provider's own
answer shape; `client_body` turns one into the shape of the endpoint the client's line named (an
Anthropic message into a chat completion for a Chat Completions line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tollway.batch.native.anthropic import AnthropicBatchClient
from tollway.batch.native.dashscope import DashScopeBatchClient
from tollway.batch.native.openai import OpenAIBatchClient

if TYPE_CHECKING:
    import aiohttp

    from tollway.batch.types import NativeBatchClient
    from tollway.routing.table import RoutedDeployment

#: wire dialect -> its batch client; a dialect not listed has no batch API tollway can use
CLIENTS: dict[str, type[OpenAIBatchClient] | type[AnthropicBatchClient]] = {
    "openai": OpenAIBatchClient,
    "qwen": DashScopeBatchClient,
    "anthropic": AnthropicBatchClient,
}


def client_for(deployment: "RoutedDeployment", session: "aiohttp.ClientSession") -> "NativeBatchClient | None":
    """The native batch client for the deployment's provider, or None when it has no batch API."""
    client = CLIENTS.get(deployment.dialect.name)
    return client(deployment, session) if client is not None else None


def client_body(deployment: "RoutedDeployment", endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """A successful native result's body in the shape of the line's `endpoint` (the provider's own shape
    when the provider speaks that endpoint natively)."""
    transforms = deployment.dialect.transforms
    if transforms.passthrough or endpoint != "/v1/chat/completions":
        return body
    return orjson.loads(transforms.response("chat", orjson.dumps(body)))


__all__ = ["AnthropicBatchClient", "CLIENTS", "DashScopeBatchClient", "OpenAIBatchClient", "client_body",
           "client_for"]

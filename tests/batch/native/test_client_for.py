"""Which deployments get a native batch client."""

from __future__ import annotations

from tests.batch.native.support import deployment
from tollway.batch.native import AnthropicBatchClient, DashScopeBatchClient, OpenAIBatchClient, client_for


def test_providers_with_a_batch_api_get_their_client_and_the_others_none() -> None:
    url = "http://127.0.0.1:9"
    assert type(client_for(deployment(url, "openai"), None)) is OpenAIBatchClient  # type: ignore[arg-type]
    assert type(client_for(deployment(url, "qwen"), None)) is DashScopeBatchClient  # type: ignore[arg-type]
    assert type(client_for(deployment(url, "anthropic"), None)) is AnthropicBatchClient  # type: ignore[arg-type]
    for dialect in ("deepseek", "kimi", "glm", "vllm"):
        assert client_for(deployment(url, dialect), None) is None  # type: ignore[arg-type]

"""LiteLLM's `provider/model` prefixes, as tollway providers: kind, dialect, default base URL, jurisdiction.

A prefix is listed only where tollway speaks the provider's API (its OpenAI-compatible endpoint) and the
endpoint is documented; anything else is reported as having no equivalent rather than guessed. Sources
(read 2026-11-22 to 2026-12-06):
- OpenAI: https://platform.openai.com/docs/api-reference (https://api.openai.com/v1)
- Azure OpenAI v1 API, OpenAI clients with a key: https://learn.microsoft.com/azure/foundry/openai/api-version-lifecycle
  (https://RESOURCE.openai.azure.com/openai/v1/)
- DeepSeek: https://api-docs.deepseek.com/quick_start/pricing (https://api.deepseek.com, /v1 alias)
- Qwen on DashScope, OpenAI-compatible mode: https://www.alibabacloud.com/help/model-studio/base-url
- Kimi (Moonshot): https://platform.moonshot.cn/docs/api/chat (api.moonshot.cn/v1; api.moonshot.ai/v1 abroad)
- GLM: https://docs.z.ai/devpack/quick-start.md (https://api.z.ai/api/paas/v4); open.bigmodel.cn/api/paas/v4
- Anthropic's OpenAI SDK compatibility: https://platform.claude.com/docs/en/api/openai-sdk
- LiteLLM's prefixes: https://docs.litellm.ai/docs/providers
"""

from __future__ import annotations

from typing import NamedTuple


class ProviderKind(NamedTuple):
    kind: str                  # tollway's catalog provider kind
    base_url: str | None       # None: the LiteLLM entry must give api_base
    jurisdiction: str
    dialect: str | None = None  # when it differs from the kind
    note: str = ""             # said once per provider made from this prefix


OPENAI = ProviderKind("openai", "https://api.openai.com/v1", "us")

PREFIXES: dict[str, ProviderKind] = {
    "openai": OPENAI,
    "text-completion-openai": OPENAI,
    "azure": ProviderKind("openai", None, "us", note=(
        "Azure OpenAI is reached through its v1 API (api_base + /openai/v1, no api-version); the Azure deployment "
        "name is sent as the model, so give it a `price:` unless it is an OpenAI model name; set `jurisdiction` "
        "to the resource's region")),
    "deepseek": ProviderKind("deepseek", "https://api.deepseek.com/v1", "cn"),
    "dashscope": ProviderKind("qwen", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "sg", note=(
        "DashScope's international endpoint (Singapore) is assumed; use https://dashscope.aliyuncs.com/"
        "compatible-mode/v1 and jurisdiction cn for a mainland account")),
    "moonshot": ProviderKind("kimi", "https://api.moonshot.ai/v1", "cn"),
    "zai": ProviderKind("glm", "https://api.z.ai/api/paas/v4", "cn"),
    "zhipu": ProviderKind("glm", "https://open.bigmodel.cn/api/paas/v4", "cn"),
    "anthropic": ProviderKind("anthropic", "https://api.anthropic.com/v1", "us", dialect="openai", note=(
        "Anthropic is reached through its OpenAI SDK compatibility endpoint, which Anthropic describes as for "
        "testing and comparison; prompt caching and extended thinking need its native API")),
    "hosted_vllm": ProviderKind("vllm", None, "self-hosted"),
    "vllm": ProviderKind("vllm", None, "self-hosted"),
    "sglang": ProviderKind("sglang", None, "self-hosted"),
    "lmdeploy": ProviderKind("lmdeploy", None, "self-hosted"),
    "llamacpp": ProviderKind("llamacpp", None, "self-hosted"),
    "ollama": ProviderKind("ollama", "http://localhost:11434/v1", "self-hosted"),
    "ollama_chat": ProviderKind("ollama", "http://localhost:11434/v1", "self-hosted"),
}

# Prefixes tollway has no dialect for, with the reason shown to the user.
UNSUPPORTED: dict[str, str] = {
    "bedrock": "AWS Bedrock needs SigV4-signed requests, which tollway does not make",
    "sagemaker": "AWS SageMaker needs SigV4-signed requests, which tollway does not make",
    "vertex_ai": "Vertex AI needs Google OAuth tokens, which tollway does not fetch",
    "gemini": "Gemini's native API is not a tollway dialect",
    "cohere": "Cohere's native API is not a tollway dialect",
    "huggingface": "Hugging Face's inference API is not a tollway dialect",
}

# LiteLLM writes api_base for Ollama without the OpenAI-compatible /v1 suffix tollway talks to.
APPEND_V1 = ("ollama",)

"""OpenAI: the reference Chat Completions dialect (sources: docs/dialects.md).

Reasoning models count reasoning tokens in completion_tokens_details but return no reasoning text."""

from tollway.providers.openai_compatible import compatible

DIALECT = compatible("openai", default_base_url="https://api.openai.com/v1")

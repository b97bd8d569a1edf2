"""OpenAI: the reference Chat Completions dialect (sources: docs/dialects.md).

Reasoning models count reasoning tokens in completion_tokens_details but return no reasoning text."""

from dataclasses import replace

from tollway.providers.openai_compatible import PATHS, compatible

# `responses`: the Responses API, called natively for a /v1/responses client (gateway/client_dialects)
DIALECT = replace(compatible("openai", default_base_url="https://api.openai.com/v1"),
                  paths={**PATHS, "responses": "responses"})

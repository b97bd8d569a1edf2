"""DeepSeek: usage on the finish chunk with prompt cache hit/miss counts, reasoning in `reasoning_content`,
an empty balance as 402 (the shared rules read both)."""

from tollway.providers.openai_compatible import compatible

DIALECT = compatible("deepseek", reasoning_field="reasoning_content", default_base_url="https://api.deepseek.com")

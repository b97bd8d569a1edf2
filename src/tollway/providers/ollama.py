"""Ollama: a self-hosted OpenAI-compatible server; reasoning in `reasoning`, all-zero usage on every
/v1/completions content chunk (the shared reader skips it), no Prometheus metrics."""

from tollway.providers.openai_compatible import compatible

DIALECT = compatible("ollama", reasoning_field="reasoning", self_hosted=True,
                     default_base_url="http://127.0.0.1:11434/v1")

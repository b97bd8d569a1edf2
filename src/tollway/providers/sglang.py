"""SGLang: a self-hosted OpenAI-compatible server; reasoning in `reasoning_content`, top-level
reasoning_tokens in usage, queue and token-pool gauges on /metrics (with --enable-metrics). A prompt
over the window is refused in its own words ("The input (N tokens) is longer than the model's context
length (M tokens)."), besides the OpenAI-style message the shared markers know."""

from tollway.providers.dialect import ErrorMeaning, Gauges
from tollway.providers.failure import FailureKind
from tollway.providers.openai_compatible import compatible

_MESSAGES = {"is longer than the model's context length": FailureKind.CONTEXT_LENGTH}

DIALECT = compatible("sglang", reasoning_field="reasoning_content", self_hosted=True,
                     default_base_url="http://127.0.0.1:30000/v1",
                     gauges=Gauges("sglang:num_queue_reqs", ("sglang:token_usage",)),
                     errors=ErrorMeaning(messages=_MESSAGES))

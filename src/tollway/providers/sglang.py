"""SGLang: a self-hosted OpenAI-compatible server; reasoning in `reasoning_content`, top-level
reasoning_tokens in usage, queue and token-pool gauges on /metrics (with --enable-metrics)."""

from tollway.providers.dialect import Gauges
from tollway.providers.openai_compatible import compatible

DIALECT = compatible("sglang", reasoning_field="reasoning_content", self_hosted=True,
                     default_base_url="http://127.0.0.1:30000/v1",
                     gauges=Gauges("sglang:num_queue_reqs", ("sglang:token_usage",)))

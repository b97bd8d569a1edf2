"""vLLM: a self-hosted OpenAI-compatible server; reasoning text in `reasoning` (renamed from
`reasoning_content`), queue and KV-cache gauges on /metrics (the KV gauge was renamed in 0.9)."""

from tollway.providers.dialect import Gauges
from tollway.providers.openai_compatible import compatible

DIALECT = compatible("vllm", reasoning_field="reasoning", self_hosted=True, default_base_url="http://127.0.0.1:8000/v1",
                     gauges=Gauges("vllm:num_requests_waiting", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")))

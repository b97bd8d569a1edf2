"""LMDeploy: a self-hosted OpenAI-compatible server; `"usage": null` on content chunks, queue and
KV-cache gauges on /metrics."""

from tollway.providers.dialect import Gauges
from tollway.providers.openai_compatible import compatible

DIALECT = compatible("lmdeploy", reasoning_field="reasoning_content", self_hosted=True,
                     default_base_url="http://127.0.0.1:23333/v1",
                     gauges=Gauges("lmdeploy:num_requests_waiting", ("lmdeploy:gpu_cache_usage_perc",)))

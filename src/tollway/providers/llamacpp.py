"""llama.cpp's llama-server: usage on a final chunk of every stream, cache hits in `timings.cache_n`,
deferred requests as its queue gauge (no KV gauge in current builds)."""

from tollway.providers.dialect import Gauges
from tollway.providers.openai_compatible import compatible

DIALECT = compatible("llamacpp", reasoning_field="reasoning_content", self_hosted=True,
                     gauges=Gauges("llamacpp:requests_deferred"))

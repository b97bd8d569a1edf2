"""Reading self-hosted backends' Prometheus pages: each server's names, per model, and what is not there."""

from tollway.routing.spillover import parse_load

VLLM = """# HELP vllm:num_requests_waiting Waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="Qwen/Qwen3-8B",engine="0"} 4.0
vllm:num_requests_waiting{model_name="other",engine="0"} 9.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="Qwen/Qwen3-8B",engine="0"} 0.42
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="Qwen/Qwen3-8B",engine="0"} 0.40
"""

SGLANG = """# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="glm-4-9b"} 2.0
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="glm-4-9b"} 0.97
"""

LLAMACPP = """# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 3
"""


def test_vllm_gauges_for_the_deployments_model_only():
    load = parse_load(VLLM, "vllm", "Qwen/Qwen3-8B")
    assert load is not None and load.waiting == 4.0 and load.kv_usage == 0.42


def test_sglang_queue_and_token_usage():
    load = parse_load(SGLANG, "sglang", "glm-4-9b")
    assert load is not None and load.waiting == 2.0 and load.kv_usage == 0.97


def test_unlabelled_llamacpp_series_count_whole():
    load = parse_load(LLAMACPP, "llamacpp", "anything")
    assert load is not None and load.waiting == 3 and load.kv_usage is None


def test_a_page_without_the_models_series_gives_nothing():
    assert parse_load(VLLM, "vllm", "not-served-here") is None
    assert parse_load("# nothing here\n", "vllm", "Qwen/Qwen3-8B") is None

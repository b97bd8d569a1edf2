"""Each provider's documented error bodies  map to the right next step."""

import pytest

from tollway.providers.failure import FailureKind, classify_response

CASES = [
    # (dialect, status, body, expected kind)
    ("deepseek", 402, b'{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}', FailureKind.OUT_OF_FUNDS),
    ("deepseek", 400, b'{"error":{"message":"This model\'s maximum context length is 131072 tokens. However, you requested 141980 tokens","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}', FailureKind.CONTEXT_LENGTH),
    ("deepseek", 429, b'{"error":{"message":"Rate Limit Reached","type":"rate_limit_error"}}', FailureKind.RATE_LIMITED),
    ("deepseek", 503, b'{"error":{"message":"Server Overloaded"}}', FailureKind.SERVER),
    ("openai", 429, b'{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}', FailureKind.OUT_OF_FUNDS),
    ("openai", 429, b'{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}', FailureKind.RATE_LIMITED),
    ("openai", 400, b'{"error":{"message":"This model\'s maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}', FailureKind.CONTEXT_LENGTH),
    ("openai", 401, b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}', FailureKind.UPSTREAM_AUTH),
    ("openai", 400, b'{"error":{"message":"Invalid value for temperature","type":"invalid_request_error","param":"temperature"}}', FailureKind.CLIENT_ERROR),
    ("qwen", 400, b'{"error":{"message":"Input data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"},"id":"chatcmpl-1","request_id":"1"}', FailureKind.CONTENT_FILTER),
    ("qwen", 400, b'{"error":{"message":"<400> InvalidParameter: Range of input length should be [1, 98304]","type":"invalid_request_error","code":"invalid_parameter_error"}}', FailureKind.CONTEXT_LENGTH),
    ("qwen", 400, b"{'code': 'Arrearage', 'param': None, 'message': 'Access denied, please make sure your account is in good standing.', 'type': 'Arrearage'}", FailureKind.OUT_OF_FUNDS),
    ("qwen", 429, b'{"error":{"message":"Requests rate limit exceeded, please try again later.","type":"Throttling.RateQuota"}}', FailureKind.RATE_LIMITED),
    ("kimi", 400, b'{"error":{"type":"content_filter","message":"The request was rejected because it was considered high risk"}}', FailureKind.CONTENT_FILTER),
    ("kimi", 400, b'{"error":{"type":"invalid_request_error","message":"Input token length too long"}}', FailureKind.CONTEXT_LENGTH),
    ("kimi", 403, b'{"error":{"type":"exceeded_current_quota_error","message":"Your account is not active"}}', FailureKind.OUT_OF_FUNDS),
    ("kimi", 429, b'{"error":{"type":"engine_overloaded_error","message":"The engine is currently overloaded"}}', FailureKind.RATE_LIMITED),
    ("glm", 429, '{"error":{"code":"1113","message":"您的账户已欠费，请充值后重试。"}}'.encode(), FailureKind.OUT_OF_FUNDS),
    ("glm", 429, b'{"error":{"code":"1302","message":"concurrency too high"}}', FailureKind.RATE_LIMITED),
    ("glm", 400, '{"error":{"code":"1301","message":"系统检测到输入或生成内容可能包含不安全或敏感内容"}}'.encode(), FailureKind.CONTENT_FILTER),
    ("glm", 400, '{"error":{"code":"1261","message":"Prompt 超长"}}'.encode(), FailureKind.CONTEXT_LENGTH),
    ("sglang", 400, b'{"object":"error","message":"Requested token count exceeds the model\'s maximum context length of 4096 tokens.","type":"BadRequestError","param":null,"code":400}', FailureKind.CONTEXT_LENGTH),
    ("lmdeploy", 400, b'{"message":"Input length (9000) must be smaller than the model context length (8192).","type":"invalid_request_error","code":400,"param":null,"object":"error"}', FailureKind.CONTEXT_LENGTH),
    ("llamacpp", 400, b'{"error":{"code":400,"message":"request exceeds the available context size","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}', FailureKind.CONTEXT_LENGTH),
    ("llamacpp", 503, b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}', FailureKind.SERVER),
    ("ollama", 503, b'{"error":{"message":"server busy, please try again.  maximum pending requests exceeded","type":"api_error","param":null,"code":null}}', FailureKind.SERVER),
    ("vllm", 500, b"<html>Internal Server Error</html>", FailureKind.SERVER),
]


@pytest.mark.parametrize("dialect, status, body, expected", CASES)
def test_classification(dialect, status, body, expected):
    assert classify_response(dialect, status, body).kind is expected


def test_retry_after_is_read_and_bad_values_ignored():
    assert classify_response("openai", 429, b"{}", "2.5").retry_after_s == 2.5
    assert classify_response("openai", 429, b"{}", "Wed, 21 Oct 2026 07:28:00 GMT").retry_after_s is None
    assert classify_response("openai", 429, b"{}", "-3").retry_after_s is None


def test_what_the_breaker_counts():
    assert FailureKind.SERVER.counts_against_health
    assert FailureKind.OUT_OF_FUNDS.counts_against_health
    assert not FailureKind.CLIENT_ERROR.counts_against_health
    assert not FailureKind.CONTENT_FILTER.counts_against_health

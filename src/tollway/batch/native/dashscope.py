"""DashScope's (Qwen on Alibaba Cloud Model Studio) OpenAI-compatible Batch API as a native batch upstream.

The same Files and Batch calls as OpenAI's under the deployment's compatible-mode base URL (for example
https://dashscope-intl.aliyuncs.com/compatible-mode/v1), with DashScope's own limits: chat and embedding
lines, one model per file, at most 50,000 requests, 500 MB a file and 6 MB a line, and a completion
window from "24h" up to "336h" (https://docs.qwencloud.com/developer-guides/text-generation/batch;
https://www.alibabacloud.com/help/en/model-studio/batch-interfaces-compatible-with-openai). Which models
take batch work differs by region (Singapore: qwen-max, qwen-plus, qwen-flash, qwen-turbo); a model the
region does not batch is refused by the provider and surfaces as the submit's error.
"""

from __future__ import annotations

from tollway.batch.native.openai import OpenAIBatchClient


class DashScopeBatchClient(OpenAIBatchClient):
    """DashScope's compatible-mode Files and Batch APIs for one deployment."""

    dialect = "qwen"
    endpoints = frozenset({"/v1/chat/completions", "/v1/embeddings"})
    max_lines = 50_000
    max_bytes = 500 * 1024 * 1024
    max_line_bytes = 6 * 1024 * 1024
    window_hours_range = (24, 336)

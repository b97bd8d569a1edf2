"""Azure OpenAI: OpenAI's bodies at deployment-style URLs, our key in `api-key`, an `api-version`.

`{base}/openai/deployments/{deployment}/chat/completions?api-version=...` where the deployment is the
config's `model:` (an Azure deployment name) and the base is `https://{resource}.openai.azure.com`;
`api_version: v1` selects the newer `{base}/openai/v1/chat/completions` form, which takes no version.
Bodies are OpenAI's, so the stream is relayed untouched (pass-through transforms). Azure's content
filter answers 400 with code `content_filter` (and an `innererror` with `ResponsibleAIPolicyViolation`):
a content refusal. Sources: https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference ,
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/api-version-lifecycle ,
https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter (retrieved 2026-12-06).
"""

from __future__ import annotations

from dataclasses import replace

from tollway.providers.dialect import AuthStyle, ErrorMeaning
from tollway.providers.failure import FailureKind
from tollway.providers.openai_compatible import PATHS, compatible

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA data-plane version of the dated line


def route(endpoint: str, model: str, version: str | None) -> str:
    path = PATHS[endpoint.removesuffix(":stream")]
    if version == "v1":
        return f"openai/v1/{path}"
    return f"openai/deployments/{model}/{path}?api-version={version or DEFAULT_API_VERSION}"


DIALECT = replace(
    compatible("azure", errors=ErrorMeaning(
        codes={"content_filter": FailureKind.CONTENT_FILTER, "ResponsibleAIPolicyViolation": FailureKind.CONTENT_FILTER},
        messages={"responsibleaipolicyviolation": FailureKind.CONTENT_FILTER}),
        default_base_url="https://{resource}.openai.azure.com"),
    auth=AuthStyle.API_KEY, route=route, default_version=DEFAULT_API_VERSION,
)

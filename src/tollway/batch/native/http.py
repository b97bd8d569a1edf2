"""Calls to one deployment's provider for batch work: its base URL and key, failures as GatewayError.

Batch calls are few and off the hot path (an upload, a create, polls, two downloads), so they go through
aiohttp's client rather than the gateway's lean upstream client, which only speaks one JSON POST per
request. The provider key rides in the deployment's headers and is never put into an error message: a
provider echoing our key back has it replaced before the message leaves this module.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from tollway.core.errors import GatewayError

if TYPE_CHECKING:
    from tollway.routing.table import RoutedDeployment

ERROR_TEXT_LIMIT = 300  # characters of a provider's error message kept in ours


class ProviderCalls:
    """HTTP to one deployment's provider, relative to its base URL (which ends in /v1)."""

    def __init__(self, deployment: "RoutedDeployment", session: aiohttp.ClientSession) -> None:
        self.deployment = deployment
        self.session = session
        # the deployment's headers carry Content-Type: application/json; a multipart upload sets its own
        self.headers = {k: v for k, v in deployment.headers.items() if k.lower() != "content-type"}
        self.timeout = aiohttp.ClientTimeout(total=deployment.response_s, sock_connect=deployment.connect_s)

    def url(self, path: str) -> str:
        return f"{self.deployment.base_url}/{path}"

    def same_origin(self, url: str) -> bool:
        """Whether `url` is on the provider's own host: only there may the key be sent."""
        ours, theirs = urlsplit(self.deployment.base_url), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    async def json(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        """A JSON call; the answer must be a JSON object."""
        body = None if payload is None else orjson.dumps(payload)
        headers = self.headers if body is None else {**self.headers, "Content-Type": "application/json"}
        raw = await self._call(method, self.url(path), headers=headers, data=body)
        return self._object(raw, path)

    async def upload(self, path: str, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        """A multipart file upload (the Files API)."""
        form = aiohttp.FormData()
        form.add_field("purpose", purpose)
        form.add_field("file", content, filename=filename, content_type="application/jsonl")
        raw = await self._call("POST", self.url(path), headers=self.headers, data=form)
        return self._object(raw, path)

    async def download(self, url: str) -> bytes:
        """A file's bytes, from a path below the base URL or an absolute URL on the provider's host."""
        if "://" not in url:
            url = self.url(url)
        elif not self.same_origin(url):
            raise GatewayError(502, f"Deployment '{self.deployment.name}' named a results location off its "
                               "provider's host; tollway does not send the provider key elsewhere.",
                               "upstream_error", "batch_upstream_error")
        return await self._call("GET", url, headers=self.headers)

    async def _call(self, method: str, url: str, **kwargs: Any) -> bytes:
        try:
            async with self.session.request(method, url, timeout=self.timeout, allow_redirects=False,
                                            **kwargs) as resp:
                raw = await resp.read()
                if resp.status >= 300:
                    raise self._refused(resp.status, raw)
                return raw
        except asyncio.TimeoutError:
            raise GatewayError(504, f"Deployment '{self.deployment.name}' did not answer its batch call in "
                               f"{self.deployment.response_s:g}s.", "timeout", "upstream_timeout") from None
        except aiohttp.ClientError as exc:
            raise GatewayError(502, f"Deployment '{self.deployment.name}' could not be reached for its batch "
                               f"call: {self._clean(str(exc) or type(exc).__name__)}", "upstream_error",
                               "batch_upstream_unreachable") from None

    def _refused(self, status: int, raw: bytes) -> GatewayError:
        """The provider's refusal, as the status a client of tollway should see."""
        where = f"Deployment '{self.deployment.name}' ({self.deployment.provider}) refused a batch call with " \
                f"{status}: {self._clean(provider_message(raw))}"
        if status == 429:
            return GatewayError(429, where, "rate_limit_error", "rate_limited")
        if status in (401, 403):
            return GatewayError(503, where, "service_unavailable", "upstream_auth")
        return GatewayError(502, where, "upstream_error", "batch_upstream_error")

    def _object(self, raw: bytes, path: str) -> dict[str, Any]:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise GatewayError(502, f"Deployment '{self.deployment.name}' answered {path} with something that is "
                               "not a JSON object.", "upstream_error", "batch_upstream_error")
        return parsed

    def _clean(self, text: str) -> str:
        secret = self.deployment.secret
        text = text.replace(secret, "***") if secret else text
        return text[:ERROR_TEXT_LIMIT]


def provider_message(raw: bytes) -> str:
    """The message inside a provider's error body (OpenAI's and Anthropic's envelopes), else the text."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace").strip() or "(empty body)"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return raw.decode(errors="replace").strip()

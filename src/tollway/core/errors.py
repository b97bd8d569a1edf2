"""Errors as clients see them: OpenAI's body shape and the right status, so SDKs raise the right exception.

Rendering needs no web framework (the hot-path server writes status, headers and body itself); `response`
builds an aiohttp Response for the admin API and the dashboard, which stay on aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from aiohttp import web


class GatewayError(Exception):
    """An error the gateway answers with; `message` is what the user reads, so say what to do."""

    def __init__(self, status: int, message: str, type_: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps({"error": {"message": self.message, "type": self.type, "param": self.param,
                                       "code": self.code}})

    def rendered(self, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and JSON body, for any server."""
        return self.status, {**headers, **self.headers, "Content-Type": "application/json"}, self.body()

    def response(self, headers: dict[str, str]) -> "web.Response":
        from aiohttp import web

        return web.Response(status=self.status, body=self.body(), content_type="application/json",
                            headers={**headers, **self.headers})


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def unauthorized() -> GatewayError:
    return GatewayError(401, "Invalid or missing API key. Send it as 'Authorization: Bearer <key>'.",
                        "authentication_error", "invalid_api_key")


def model_not_found(model: str, known: list[str]) -> GatewayError:
    listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
    return GatewayError(404, f"The model '{model}' does not exist on this gateway. Available models: {listed}.",
                        "invalid_request_error", "model_not_found", "model")


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"Request body is larger than the limit of {limit} bytes (server.max_body_bytes).",
                        "invalid_request_error", "request_too_large")


def internal_error() -> GatewayError:
    return GatewayError(500, "The gateway failed while serving this request; its log names the request id.",
                        "server_error", "internal_error")

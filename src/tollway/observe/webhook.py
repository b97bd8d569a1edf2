"""Delivering alerts to a webhook (Slack-compatible JSON), off the request path, with retries.

Alerts are queued and posted by one background task, so a slow or dead receiver delays nothing else.
The URL is treated as a secret (a Slack webhook URL is a bearer credential): it is never logged, and
delivery errors name only the HTTP status or the error type.
"""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import orjson

from tollway.core.alerts import Alert
from tollway.observe.settings import WebhookSettings

log = logging.getLogger("tollway.alerts")


class WebhookConfigError(Exception):
    """The webhook is configured but its URL cannot be found; names the setting and variable."""


def webhook_url(settings: WebhookSettings) -> str | None:
    if settings.url:
        return settings.url
    if settings.url_env:
        value = os.environ.get(settings.url_env, "").strip()
        if not value:
            raise WebhookConfigError(f"observe.alerts.webhook.url_env: environment variable {settings.url_env} "
                                     "is not set")
        if not value.startswith(("http://", "https://")):
            raise WebhookConfigError(f"observe.alerts.webhook.url_env: {settings.url_env} must hold an http(s) URL")
        return value
    return None


class WebhookSender:
    def __init__(self, url: str, settings: WebhookSettings) -> None:
        self._url = url
        self._settings = settings
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s),
                                              trust_env=True)  # an egress proxy from HTTP(S)_PROXY, NO_PROXY
        self._task = asyncio.create_task(self._run(), name="alert-webhook")

    def send(self, alert: Alert) -> None:
        self._queue.put_nowait(alert)

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            await self._deliver(alert)
            self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        assert self._session is not None
        body = orjson.dumps(alert.slack_payload())
        problem = ""
        for attempt in range(self._settings.retries + 1):
            try:
                async with self._session.post(self._url, data=body,
                                              headers={"Content-Type": "application/json"}) as response:
                    if response.status < 300:
                        self.delivered += 1
                        return
                    problem = f"HTTP {response.status}"
                    if response.status < 500 and response.status != 429:
                        break
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = type(exc).__name__
            await asyncio.sleep(min(0.5 * 2 ** attempt, 10))
        self.failed += 1
        log.error("alert %s (%s) could not be delivered to the webhook: %s", alert.id, alert.kind, problem)

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Try to deliver what is queued (bounded), then close."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), flush_timeout_s)
            except TimeoutError:
                log.warning("%d alerts not delivered to the webhook before shutdown", self._queue.qsize())
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._session is not None:
            await self._session.close()

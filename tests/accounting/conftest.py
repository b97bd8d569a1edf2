"""Fixtures for the budget tests: replicas of one gateway config, started together."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.accounting.support import start_gateways
from tests.fixtures.gateway import GatewayHandle


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., list[GatewayHandle]]]:
    """`replicas(config, redis_url=None, database_url=None, count=2)`: gateways sharing that state."""
    started = [0]
    with ExitStack() as stack:
        def start(config: dict, redis_url: str | None = None, database_url: str | None = None,
                  count: int = 2) -> list[GatewayHandle]:
            args: tuple[str, ...] = ()
            if database_url:
                args += ("--database-url", database_url)
            if redis_url:
                args += ("--redis-url", redis_url)
            names = [f"replica-{started[0] + n}" for n in range(count)]
            started[0] += count
            return start_gateways(stack, tmp_path, config, names, extra_args=args)
        yield start

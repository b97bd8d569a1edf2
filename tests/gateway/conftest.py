"""Fixtures of the gateway tests."""

from __future__ import annotations

import pytest

from tests.gateway.support import AN_KEY, CLAUDE, PROVIDER_KEYS, emulator_config, with_claude


@pytest.fixture
def claude_and_deepseek(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12, "cache_hit_ratio": 0.5},
                                       CLAUDE: {"api_key": AN_KEY, "output_tokens": 8}}})
    gw = gateway_factory(with_claude(emulator_config(emu, group=["ds-flash"]), emu),
                         env={**PROVIDER_KEYS, "AN_KEY": AN_KEY})
    return emu, gw

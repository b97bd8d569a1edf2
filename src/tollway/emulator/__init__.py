"""`tollway emulate`: a sandbox provider that speaks each provider's dialect and injects faults.

Public API: `create_app(config) -> aiohttp.web.Application`, `run(host, port, config)`, and the config
types in `tollway.emulator.profiles` (`build_config`, `load_config`, `EmulatorConfig`, `ModelProfile`).
See docs/emulator.md.
"""

from tollway.emulator.server import create_app, run

__all__ = ["create_app", "run"]

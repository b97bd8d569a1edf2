"""Fixtures shared by the whole suite. Each fixture module starts one kind of real process."""

from tests.fixtures.emulator import *  # noqa: F401,F403  (emulator, emulator_factory)
from tests.fixtures.gateway import *  # noqa: F401,F403  (gateway_factory)
from tests.fixtures.llama import *  # noqa: F401,F403  (llama_server)
from tests.fixtures.postgres import *  # noqa: F401,F403  (postgres_server, postgres_url, postgres_factory)
from tests.fixtures.redis import *  # noqa: F401,F403  (redis_server, redis_url, redis_factory)

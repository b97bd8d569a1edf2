"""Fixtures shared by the whole suite. Each fixture module starts one kind of real process."""

pytest_plugins = [
    "tests.fixtures.emulator",  # emulator, emulator_factory
    "tests.fixtures.gateway",  # gateway_factory
    "tests.fixtures.llama",  # llama_server
    "tests.fixtures.oidc",  # oidc_provider (npm's oidc-provider)
    "tests.fixtures.postgres",  # postgres_server, postgres_url, postgres_factory
    "tests.fixtures.redis",  # redis_server, redis_url, redis_factory
]

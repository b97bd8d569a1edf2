"""Config from the environment (twelve-factor): `${VAR}` in tollway.yaml and the TOLLWAY_* variables.

One reviewed tollway.yaml should serve every environment (a laptop, staging, a cluster), so values that
differ per environment (a backend's address, a region, a Redis URL without a password) can be written as
`${VAR}` or `${VAR:-default}` and filled in from the environment when the config is loaded.

Secrets do not belong here: a `${VAR}` becomes part of the config's values, and config errors quote
values (a `base_url` that does not start with http:// is printed whole). Provider keys stay in
`api_key_env` / `api_key_file`: read only to be sent, and named, never shown, in errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

# The variables `tollway serve` reads besides the config file; flag > variable > config file > default.
ENV_CONFIG = "TOLLWAY_CONFIG"
ENV_HOST = "TOLLWAY_HOST"
ENV_PORT = "TOLLWAY_PORT"
ENV_REDIS_URL = "TOLLWAY_REDIS_URL"
ENV_DATABASE_URL = "TOLLWAY_DATABASE_URL"
SERVE_VARIABLES = (ENV_CONFIG, ENV_HOST, ENV_PORT, ENV_REDIS_URL, ENV_DATABASE_URL)

# `$${` is a literal `${`; `${NAME}` or `${NAME:-default}` (default used when NAME is unset or empty).
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class EnvReferenceError(ValueError):
    """A `${...}` that cannot be filled in; the message names the key path and the variable."""


def expand_env(raw: Any, environ: Mapping[str, str] | None = None, where: str = "") -> Any:
    """`raw` (parsed YAML) with every `${VAR}` in its string values replaced from `environ`.

    Keys are left alone (a key names config structure, not a value) and a value stays a string: the
    config's own types (int, bool, Decimal) parse it afterwards, with their usual errors.
    """
    env = os.environ if environ is None else environ
    if isinstance(raw, dict):
        return {key: expand_env(value, env, f"{where}.{key}" if where else str(key)) for key, value in raw.items()}
    if isinstance(raw, list):
        return [expand_env(value, env, f"{where}[{i}]") for i, value in enumerate(raw)]
    if isinstance(raw, str) and "${" in raw:
        return _expand_string(raw, env, where or "(top level)")
    return raw


def _expand_string(text: str, env: Mapping[str, str], where: str) -> str:
    if "${" in _REFERENCE.sub("", text):
        raise EnvReferenceError(f"{where}: malformed ${{...}} reference (write ${{NAME}} or ${{NAME:-default}}; "
                                "$${ for a literal ${)")

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:
            return "${"  # the `$${` escape
        value = env.get(name)
        if value:
            return value
        if default is not None:
            return default
        if value is None:
            raise EnvReferenceError(f"{where}: environment variable {name} is not set "
                                    f"(set it, or write ${{{name}:-default}} for a default)")
        return value

    return _REFERENCE.sub(replace, text)

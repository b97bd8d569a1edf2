"""Benchmark targets: `--target name=URL[,model=M][,key_env=VAR][,exact=false]`.

Why: the point of the benchmark is to run one workload against several deployment options (a per-token
API, provisioned throughput, a dedicated unit, a self-hosted server) side by side. Each can have its own
model name and API key; keys are read from the environment and never printed, and URLs are shown with
any credentials or query string removed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_OPTIONS = ("model", "key_env", "exact")


class TargetError(ValueError):
    """A --target value that cannot be used; the message names the part at fault."""


@dataclass(frozen=True, slots=True)
class Target:
    """One OpenAI-compatible endpoint under test.

    base_url: what an OpenAI SDK would take as base_url (e.g. http://host:8000/v1).
    exact_output: send min_tokens/ignore_eos so the output length is exactly the requested one
    (None: try it and fall back if the server rejects the fields).
    """

    name: str
    base_url: str
    model: str
    key_env: str = DEFAULT_KEY_ENV
    exact_output: bool | None = None

    @property
    def chat_url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    @property
    def display_url(self) -> str:
        return redact_url(self.base_url)

    def api_key(self) -> str | None:
        """The key from the environment, or None when the variable is unset (e.g. a local server)."""
        return os.environ.get(self.key_env) or None


def redact_url(url: str) -> str:
    """The URL without user:password and without a query string (either may carry a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_target(text: str, default_model: str | None, default_key_env: str = DEFAULT_KEY_ENV) -> Target:
    """Read one --target value; `default_model` is --model, used when the target names none."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise TargetError(f"--target {text!r}: write NAME=URL, NAME made of letters, digits, '_', '-', '.'")
    url, *options = rest.split(",")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"--target {name}: {redact_url(url) or url!r} is not an http(s) URL")
    values = _options(name, options)
    model = values.get("model") or default_model
    if not model:
        raise TargetError(f"--target {name}: no model; pass --model M or add ,model=M to the target")
    exact = values.get("exact")
    if exact is not None and exact.lower() not in ("true", "false"):
        raise TargetError(f"--target {name}: exact={exact!r} must be true or false")
    return Target(name=name, base_url=url, model=model, key_env=values.get("key_env") or default_key_env,
                  exact_output=None if exact is None else exact.lower() == "true")


def _options(name: str, options: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep or key not in _OPTIONS or not value.strip():
            raise TargetError(f"--target {name}: option {option.strip()!r} is not one of "
                              f"{', '.join(o + '=...' for o in _OPTIONS)}")
        values[key] = value.strip()
    return values


def check_unique(targets: list[Target]) -> None:
    """Target names label every table row and plot line, so they must differ."""
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise TargetError(f"--target name {target.name!r} is used twice")
        seen.add(target.name)

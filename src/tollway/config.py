"""The gateway's config file (tollway.yaml): schema, loading, secrets from env vars or files, clear errors.

A config is reviewed data: every mistake should fail at start with the file, the key path and what is
wrong, never at the first request. Secrets are read from the environment or a file and never printed:
errors name the variable or file, not its content.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import platformdirs
import yaml
from pydantic import Field, ValidationError, model_validator

from tollway.accounting.settings import (
    BudgetSettings,
    KeysSettings,
    LimitsSettings,
    TeamSettings,
    check_admission_references,
    check_database_url,
    check_redis_url,
)
from tollway.batch.settings import BatchSettings
from tollway.config_env import ENV_CONFIG, EnvReferenceError, expand_env
from tollway.core.config_base import Strict as _Strict
from tollway.ledger.settings import ResponsesSettings
from tollway.observe.settings import AdminSettings, ObserveSettings
from tollway.providers.registry import DIALECTS as DIALECT_REGISTRY
from tollway.providers.registry import SELF_HOSTED_NAMES, UPSTREAM_NAMES
from tollway.routing.settings import (  # re-exported: sections live with their owners
    Deployment,
    PriceOverride,
    RouteGroup,
)

__all__ = ["Config", "ConfigError", "Deployment", "PriceOverride", "Provider", "RouteGroup", "load_config"]

DIALECTS = UPSTREAM_NAMES  # the dialects the gateway can call (providers/registry.py)
SELF_HOSTED_KINDS = SELF_HOSTED_NAMES  # a provider of one of these kinds runs on capacity already paid for
BUILTIN_CONFIG = Path(__file__).with_name("default-config.yaml")


class ConfigError(Exception):
    """A config problem a user must fix; the message names the file, the key path and the fix."""


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    request_deadline_s: float = Field(300.0, gt=0)
    api_keys_env: list[str] = Field(default_factory=list, description="env vars holding accepted client keys")
    admin_key_env: str | None = Field(None, description="env var holding the key for /admin/ and /dashboard")


class Timeouts(_Strict):
    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(60.0, gt=0)
    between_chunks_s: float = Field(60.0, gt=0)
    response_s: float = Field(600.0, gt=0, description="non-streamed: time for the whole answer")


class RetrySettings(_Strict):
    max_attempts: int = Field(4, ge=1, description="attempts per request across all deployments")
    retries_per_deployment: int = Field(1, ge=0, description="extra tries on the same deployment for transient errors")
    backoff_base_s: float = Field(0.05, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)
    retry_after_cap_s: float = Field(5.0, ge=0, description="longest Retry-After honoured; longer ones move on")


class BreakerSettings(_Strict):
    consecutive_failures: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    window: int = Field(20, ge=2, description="outcomes the error rate is computed over")
    min_requests: int = Field(10, ge=1, description="outcomes needed before the error rate can open the breaker")
    open_s: float = Field(10.0, gt=0, description="how long an open breaker refuses before a half-open probe")
    key_open_s: float = Field(60.0, gt=0, description="how long a provider key that was refused (401/403) or ran "
                              "out of funds is left out before one request probes it again")


class LedgerSettings(_Strict):
    path: Path | None = None
    flush_interval_s: float = Field(0.25, gt=0)
    batch_size: int = Field(1000, ge=1)
    retention_days: int | None = Field(None, ge=1, description="PostgreSQL: drop day partitions older than this "
                                       "many days (default: keep every row)")


class Provider(_Strict):
    kind: str = Field(description="catalog provider kind: deepseek, qwen, kimi, glm, openai, vllm, ...")
    dialect: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    api_key_envs: list[str] | None = Field(None, description="several keys, used in turn (routing/key_ring.py)")
    api_key_files: list[Path] | None = Field(None, description="several keys, one file each, used in turn")
    jurisdiction: str = "us"
    region: str | None = None
    launch: Literal["llama-server"] | None = Field(None, description="start a managed local backend")
    timeouts: Timeouts = Timeouts()
    headers: dict[str, str] = Field(default_factory=dict)
    api_version: str | None = Field(None, description="azure: api-version (or v1); anthropic: anthropic-version")

    @model_validator(mode="after")
    def _check(self) -> "Provider":
        if self.resolved_dialect not in DIALECTS:
            raise ValueError(_unusable_dialect(self.resolved_dialect))
        if self.base_url is None and self.launch is None:
            raise ValueError("needs base_url (or launch: llama-server for the bundled local model)")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        _check_key_sources(self)
        return self

    @property
    def resolved_dialect(self) -> str:
        return self.dialect or self.kind

    @property
    def is_self_hosted(self) -> bool:
        return self.kind in SELF_HOSTED_KINDS


KEY_SOURCES = ("api_key_env", "api_key_file", "api_key_envs", "api_key_files")


def _check_key_sources(provider: Provider) -> None:
    """One place names the provider's keys; a list names each key once (a key listed twice would get
    twice the traffic and share one breaker with itself)."""
    given = [name for name in KEY_SOURCES if getattr(provider, name) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of {', '.join(KEY_SOURCES)}, not {' and '.join(given)}")
    for name in ("api_key_envs", "api_key_files"):
        entries = getattr(provider, name)
        if entries is None:
            continue
        if not entries:
            raise ValueError(f"{name} is an empty list: name at least one key (or leave {name} out for a "
                             "provider that takes no key)")
        seen: set[str] = set()
        for entry in map(str, entries):
            if not entry:
                raise ValueError(f"{name} has an empty entry")
            if entry in seen:
                raise ValueError(f"{name} names {entry} twice")
            seen.add(entry)


def _unusable_dialect(name: str) -> str:
    """Why a provider's dialect cannot be called: unknown, or known only for usage and errors so far."""
    known = DIALECT_REGISTRY.get(name)
    if known is not None and not known.upstream:
        return (f"dialect {name!r} cannot be called as an upstream yet (its wire format needs request and "
                f"response transforms tollway does not have); use one of {', '.join(DIALECTS)}")
    return f"dialect {name!r} is not one of {', '.join(DIALECTS)}"


class Config(_Strict):
    server: ServerSettings = ServerSettings()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    ledger: LedgerSettings = LedgerSettings()
    responses: ResponsesSettings = ResponsesSettings()
    cny_per_usd: Decimal | None = Field(None, gt=0)
    catalog: list[dict[str, Any]] = Field(default_factory=list)
    providers: dict[str, Provider] = Field(min_length=1)
    deployments: dict[str, Deployment] = Field(min_length=1)
    route_groups: dict[str, RouteGroup] = Field(default_factory=dict)
    observe: ObserveSettings = ObserveSettings()
    admin: AdminSettings = AdminSettings()  # single sign-on and roles for /admin (docs/admin.md)
    redis_url: str | None = Field(None, description="shared limits, budgets and revocations for many replicas")
    database_url: str | None = Field(None, description="postgresql://... for the ledger and keys (default: SQLite)")
    on_redis_failure: Literal["closed", "open"] = "closed"
    keys: KeysSettings = KeysSettings()
    teams: dict[str, TeamSettings] = Field(default_factory=dict)
    limits: LimitsSettings = LimitsSettings()
    budgets: BudgetSettings = BudgetSettings()
    batch: BatchSettings = BatchSettings()

    @model_validator(mode="after")
    def _check_references(self) -> "Config":
        for name, dep in self.deployments.items():
            if dep.provider not in self.providers:
                raise ValueError(f"deployments.{name}.provider: no provider named {dep.provider!r} "
                                 f"(providers: {', '.join(self.providers)})")
        for name, group in self.route_groups.items():
            for dep_name in group.deployments:
                if dep_name not in self.deployments:
                    raise ValueError(f"route_groups.{name}.deployments: no deployment named {dep_name!r} "
                                     f"(deployments: {', '.join(self.deployments)})")
        public_names: dict[str, str] = {}
        for owner, names in self._public_names():
            for public in names:
                if public in public_names and public_names[public] != owner:
                    raise ValueError(f"public model name {public!r} is used by both {public_names[public]} and {owner}")
                public_names[public] = owner
        return self

    @model_validator(mode="after")
    def _check_admission(self) -> "Config":
        check_redis_url(self.redis_url)
        check_database_url(self.database_url)
        check_admission_references(self)
        return self

    def _public_names(self) -> list[tuple[str, list[str]]]:
        owners = [(f"route_groups.{g}", [g, *rg.aliases]) for g, rg in self.route_groups.items()]
        owners += [(f"deployments.{d}", dep.aliases) for d, dep in self.deployments.items()]
        return owners


def default_config_path() -> Path | None:
    """The config file used when --config is not given: $TOLLWAY_CONFIG, ./tollway.yaml, the user's config dir."""
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    for candidate in (Path("tollway.yaml"), Path(platformdirs.user_config_dir("tollway")) / "tollway.yaml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None) -> tuple[Config, Path]:
    """Read and validate a config file; with no path, the search path, then the built-in local-model config."""
    path = path or default_config_path() or BUILTIN_CONFIG
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with providers, deployments and route_groups")
    litellm = [key for key in LITELLM_KEYS if key in raw]
    if litellm:
        raise ConfigError(f"{path}: {', '.join(litellm)}: this is a LiteLLM proxy config, not a tollway one. "
                          f"Translate it with `tollway migrate litellm {path} -o tollway.yaml`, which also lists "
                          "what has no equivalent (see docs/migrate.md)")
    try:
        raw = expand_env(raw)  # ${VAR} and ${VAR:-default} in values (tollway.config_env)
    except EnvReferenceError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return Config.model_validate(raw), path
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid config:\n{_describe(exc)}") from None


# Top-level keys of a LiteLLM proxy config: a file written for LiteLLM is translated, not patched by hand.
LITELLM_KEYS = ("model_list", "litellm_params", "litellm_settings", "router_settings", "general_settings",
                "environment_variables")
# Keys that would put a secret in the file itself; the file is reviewed, copied and committed.
INLINE_SECRET_KEYS = ("api_key", "key", "token", "secret", "password")


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = _unknown_key_hint(err["loc"])
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def _unknown_key_hint(loc: tuple) -> str:
    """What an unknown key most likely means: a LiteLLM config, an inline secret, or a typo."""
    name = str(loc[-1]) if loc else ""
    if name in LITELLM_KEYS:
        return (f"unknown key: `{name}` is LiteLLM's; tollway uses providers, deployments and route_groups. "
                "Translate the file with `tollway migrate litellm FILE -o tollway.yaml` (see docs/migrate.md)")
    if len(loc) == 3 and loc[0] == "providers" and name in INLINE_SECRET_KEYS:
        return ("unknown key: a secret is never written in the config (it is reviewed, copied and committed, "
                "and would leak); name where it is instead: `api_key_env: VARIABLE` (an environment variable) or "
                "`api_key_file: PATH` (a file holding only the key)")
    return "unknown key (check its spelling and placement)"


def resolve_api_key(name: str, provider: Provider) -> str | None:
    """The provider's first secret (the one a single-key provider has), or None when it takes no key."""
    keys = resolve_api_keys(name, provider)
    return keys[0][1] if keys else None


def resolve_api_keys(name: str, provider: Provider) -> list[tuple[str, str]]:
    """The provider's secrets in configured order, each with where it came from (an env var's name or a
    file's path: never the value). Errors name the variable or file, never the value."""
    if provider.api_key_env:
        return [(provider.api_key_env, _env_secret(f"providers.{name}.api_key_env", provider.api_key_env))]
    if provider.api_key_file:
        return [(str(provider.api_key_file), _file_secret(f"providers.{name}.api_key_file", provider.api_key_file))]
    keys: list[tuple[str, str]] = []
    for i, env in enumerate(provider.api_key_envs or ()):
        keys.append((env, _env_secret(f"providers.{name}.api_key_envs[{i}]", env)))
    for i, path in enumerate(provider.api_key_files or ()):
        keys.append((str(path), _file_secret(f"providers.{name}.api_key_files[{i}]", path)))
    _refuse_repeated_secrets(name, provider, keys)
    return keys


def _env_secret(where: str, env: str) -> str:
    value = os.environ.get(env)
    if not value or not value.strip():
        raise ConfigError(f"{where}: environment variable {env} is not set")
    return value.strip()


def _file_secret(where: str, path: Path) -> str:
    try:
        value = path.expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{where}: {path} is empty")
    return value


def _refuse_repeated_secrets(name: str, provider: Provider, keys: list[tuple[str, str]]) -> None:
    """Two sources holding the same key are one key listed twice: refused, naming the sources."""
    first_source: dict[str, str] = {}
    field = "api_key_envs" if provider.api_key_envs is not None else "api_key_files"
    for source, secret in keys:
        if secret in first_source:
            raise ConfigError(f"providers.{name}.{field}: {first_source[secret]} and {source} hold the same key; "
                              "list each key once")
        first_source[secret] = source


def resolve_client_keys(settings: ServerSettings) -> frozenset[str]:
    """Keys clients may present; empty means the gateway accepts any request (local use)."""
    keys = set()
    for env in settings.api_keys_env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"server.api_keys_env: environment variable {env} is not set")
        keys.add(value.strip())
    return frozenset(keys)


def default_ledger_path() -> Path:
    return Path(platformdirs.user_data_dir("tollway")) / "ledger.db"

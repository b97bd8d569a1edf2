"""The emulator's configuration: model behaviour profiles and their faults.

Validated with pydantic so a typo in a rehearsal config fails at start with the file, the key path and
what is wrong, instead of silently emulating the wrong provider.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from tollway.providers import registry

DIALECT_NAMES = registry.NAMES
DialectName = Literal[DIALECT_NAMES]  # type: ignore[valid-type]  # the registry's names, checked by pydantic
FaultKind = Literal["rate_limit", "server_error", "overloaded", "insufficient_balance", "content_filter",
                    "context_length", "hang", "cut_stream", "stall"]

SELECTORS = ("probability", "every", "first", "after")
# parameters that only make sense for some kinds: name -> kinds that accept it
KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "retry_after_s": ("rate_limit",),
    "status": ("server_error", "insufficient_balance"),
    "hang_s": ("hang",),
    "after_tokens": ("cut_stream", "stall", "content_filter"),
    "stall_s": ("stall",),
}
SERVER_ERROR_STATUSES = (500, 502, 503, 504)


class Fault(BaseModel):
    """One injected failure and when it fires (no selector = every request)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    probability: float | None = Field(default=None, ge=0, le=1)
    every: int | None = Field(default=None, ge=1)
    first: int | None = Field(default=None, ge=1)
    after: int | None = Field(default=None, ge=0)
    retry_after_s: float | None = Field(default=None, ge=0)
    status: int | None = None
    hang_s: float | None = Field(default=None, ge=0)
    after_tokens: int | None = Field(default=None, ge=0)
    stall_s: float | None = Field(default=None, ge=0)
    message: str | None = None
    api_key: str | None = Field(default=None, min_length=1)  # fires only on requests presenting this key

    @model_validator(mode="after")
    def _check_combination(self) -> "Fault":
        chosen = [name for name in SELECTORS if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise ValueError(f"use at most one of probability/every/first/after, got {', '.join(chosen)}")
        for param, kinds in KIND_PARAMS.items():
            if getattr(self, param) is not None and self.kind not in kinds:
                raise ValueError(f"'{param}' applies only to kind {' or '.join(kinds)}, not {self.kind}")
        if self.kind == "stall" and self.stall_s is None:
            raise ValueError("kind stall needs stall_s (seconds to pause)")
        if self.kind == "server_error" and self.status is not None and self.status not in SERVER_ERROR_STATUSES:
            raise ValueError(f"server_error status must be one of {SERVER_ERROR_STATUSES}, got {self.status}")
        if self.kind == "insufficient_balance" and self.status is not None and not 400 <= self.status <= 499:
            raise ValueError(f"insufficient_balance status must be a 4xx code, got {self.status}")
        return self


class ModelProfile(BaseModel):
    """How one model behaves: latency, output size, cache and reasoning shares, limits, auth, faults."""

    model_config = ConfigDict(extra="forbid")

    ttft_ms: float = Field(default=0, ge=0)
    tpot_ms: float = Field(default=0, ge=0)
    output_tokens: int = Field(default=16, ge=0)
    tokens_per_chunk: int = Field(default=1, ge=1)
    context_window: int | None = Field(default=None, ge=1)
    cache_hit_ratio: float = Field(default=0, ge=0, le=1)
    cache_write_ratio: float = Field(default=0, ge=0, le=1)
    cache_write_1h_share: float = Field(default=0, ge=0, le=1)  # Anthropic: the share of writes with a 1-hour TTL
    reasoning_tokens: int = Field(default=0, ge=0)
    api_key: SecretStr | None = None
    api_keys: list[str] | None = None  # more accepted keys (one account's several keys, or several accounts)
    dialect: DialectName | None = None
    queue_waiting: int = Field(default=0, ge=0)
    max_running: int = Field(default=0, ge=0)
    kv_cache_usage: float | None = Field(default=None, ge=0, le=1)
    keepalive_ms: float = Field(default=1000, gt=0)
    embedding_dim: int = Field(default=8, ge=1, le=4096)
    tool_calls: int = Field(default=1, ge=1, le=16)  # declared tools one answer calls (2+: parallel calls)
    faults: list[Fault] = Field(default_factory=list)

    def public_dict(self) -> dict[str, Any]:
        """The profile as JSON-safe data with the api_key redacted."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.api_key is not None:
            data["api_key"] = "***"
        if self.api_keys is not None:
            data["api_keys"] = ["***"] * len(self.api_keys)
        for fault in data.get("faults", ()):
            if "api_key" in fault:
                fault["api_key"] = "***"
        return data

    def accepts(self, key: str | None) -> bool:
        """Whether `key` may use this model: any key when none is configured."""
        if self.api_key is None and self.api_keys is None:
            return True
        if key is None:
            return False
        allowed = [*(self.api_keys or ()), *([self.api_key.get_secret_value()] if self.api_key else ())]
        return any(hmac.compare_digest(key.encode(), allowed_key.encode()) for allowed_key in allowed)


class EmulatorConfig(BaseModel):
    """The whole config file: a seed for probabilistic faults, a default profile, per-model profiles."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    default: ModelProfile = Field(default_factory=ModelProfile)
    models: dict[str, ModelProfile] = Field(default_factory=dict)

    def profile_for(self, model: str) -> ModelProfile:
        return self.models.get(model, self.default)


class ConfigError(ValueError):
    """A config file or profile that cannot be used; the message names the file, key path and problem."""


def describe_errors(exc: ValidationError, origin: str, prefix: str = "") -> str:
    """One line per pydantic error: `origin: key.path: what is wrong (got value)`."""
    lines = []
    for err in exc.errors():
        path = _join(prefix, _format_loc(err["loc"]))
        got = err.get("input")
        shown = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
        if "api_key" in path:
            shown = ""
        message = "unknown key (check its spelling against docs/emulator.md)" if err["type"] == "extra_forbidden" \
            else err["msg"]
        lines.append(f"{origin}: {path or '<top>'}: {message}{shown}")
    return "\n".join(lines)


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") or not path else f"{prefix}.{path}"


def _format_loc(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def merge_profile(base: ModelProfile, overrides: dict[str, Any], origin: str, prefix: str = "") -> ModelProfile:
    """A profile = `base` with the given fields replaced; fields not given are inherited."""
    if not isinstance(overrides, dict):
        where = f"{prefix}: " if prefix else ""
        raise ConfigError(f"{origin}: {where}a profile must be a mapping, got {type(overrides).__name__}")
    data = base.model_dump()
    if base.api_key is not None:
        data["api_key"] = base.api_key.get_secret_value()
    data.update(overrides)
    try:
        return ModelProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, origin, prefix)) from None


def build_config(raw: dict[str, Any] | None, cli_default: dict[str, Any] | None = None,
                 origin: str = "config") -> EmulatorConfig:
    """Validate a config mapping. Precedence for the default profile: built-ins < file `default` < CLI flags.

    Each `models` entry inherits every field it does not set from that default profile.
    """
    raw = dict(raw or {})
    try:
        shell = EmulatorConfig.model_validate({k: v for k, v in raw.items() if k not in ("default", "models")})
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, origin)) from None
    default = merge_profile(ModelProfile(), _mapping(raw.get("default") or {}, origin, "default"), origin, "default")
    if cli_default:
        default = merge_profile(default, cli_default, "command line")
    models = {}
    for name, overrides in _mapping(raw.get("models") or {}, origin, "models").items():
        models[str(name)] = merge_profile(default, _mapping(overrides or {}, origin, f"models.{name}"),
                                          origin, f"models.{name}")
    return EmulatorConfig(seed=shell.seed, default=default, models=models)


def _mapping(value: Any, origin: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: {key}: must be a mapping, got {type(value).__name__}")
    return value


def load_config(path: str | Path | None, cli_default: dict[str, Any] | None = None) -> EmulatorConfig:
    """Read and validate a YAML (or JSON) config file; None means defaults plus CLI flags."""
    if path is None:
        return build_config(None, cli_default)
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with seed/default/models")
    return build_config(raw, cli_default, origin=str(path))

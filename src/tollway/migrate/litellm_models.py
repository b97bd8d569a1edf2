"""LiteLLM's `model_list` as tollway providers, deployments, route groups and deployment rate limits.

Each LiteLLM entry is one deployment; entries sharing a `model_name` become one route group (LiteLLM load
balances them, so does the group). Entries sharing a provider kind, base URL, key and timeouts share one
tollway provider. A secret written inline is never copied into the new file: the provider names an
environment variable instead, and the user is told to export it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypeGuard

from tollway.migrate.litellm_providers import APPEND_V1, PREFIXES, UNSUPPORTED, ProviderKind

ENV_PREFIX = "os.environ/"
# litellm_params that become something in tollway; everything else is reported.
_MAPPED_PARAMS = {"model", "api_base", "base_url", "api_key", "rpm", "tpm", "timeout", "stream_timeout", "weight",
                  "input_cost_per_token", "output_cost_per_token"}
_WHY = {
    "api_version": "Azure's v1 API takes no api-version",
    "max_tokens": "a per-deployment default max_tokens has no equivalent; a key's default_max_tokens caps what "
                  "requests without max_tokens hold and send (docs/budgets.md)",
    "temperature": "tollway sends each request's own parameters untouched; it sets no defaults",
    "max_retries": "retries are gateway-wide in tollway (retry.retries_per_deployment)",
    "organization": "extra headers go under the provider's `headers:`",
    "drop_params": "tollway passes request fields through untouched",
}


@dataclass
class Translation:
    """The tollway config being built and, line by line, what had no equivalent."""

    providers: dict[str, dict] = field(default_factory=dict)
    deployments: dict[str, dict] = field(default_factory=dict)
    route_groups: dict[str, dict] = field(default_factory=dict)
    limits: dict[str, dict] = field(default_factory=dict)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # group -> deployment -> LiteLLM weight
    notes: list[str] = field(default_factory=list)
    _provider_keys: dict[tuple, str] = field(default_factory=dict)
    _noted: set[str] = field(default_factory=set)

    def note(self, where: str, text: str) -> None:
        self.notes.append(f"{where}: {text}")

    def note_once(self, key: str, where: str, text: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.note(where, text)


def translate_model_list(entries: object, out: Translation) -> None:
    if not isinstance(entries, list):
        out.note("model_list", "not a list: nothing to translate")
        return
    for index, entry in enumerate(entries):
        where = f"model_list[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            out.note(where, "has no model_name: left out")
            continue
        _translate_entry(where, entry, out)


def _translate_entry(where: str, entry: dict, out: Translation) -> None:
    group = entry["model_name"]
    where = f"{where} ({group})"
    params = _section(entry.get("litellm_params"))
    model = params.get("model")
    if not isinstance(model, str) or not model:
        out.note(where, "litellm_params.model is missing: left out")
        return
    prefix, upstream = _split(model)
    if prefix in UNSUPPORTED or prefix not in PREFIXES and not params.get("api_base"):
        reason = UNSUPPORTED.get(prefix, f"tollway knows no provider {prefix!r} and no api_base is given")
        out.note(where, f"{model}: left out: {reason}")
        return
    kind = PREFIXES.get(prefix) or ProviderKind("openai", None, "us", note=(
        f"{prefix!r} is not a tollway provider kind; its api_base is used as an OpenAI-compatible endpoint, "
        f"priced only with a `price:` (or change the kind); set its jurisdiction (us is assumed)"))
    base_url = _base_url(where, prefix, kind, params, out)
    if base_url is None:
        return
    if prefix == "openai" and kind.base_url is not None and base_url != kind.base_url:
        out.note(where, f"an OpenAI-compatible server at {base_url}: kind openai and jurisdiction us are assumed; "
                        "for a self-hosted server use kind vllm (or sglang, lmdeploy, llamacpp, ollama) and "
                        "jurisdiction self-hosted")
    provider = _provider(where, prefix, kind, base_url, params, out)
    name = _deployment_name(upstream, out)
    deployment: dict = {"provider": provider, "model": upstream}
    price = _price(where, params, entry.get("model_info"), out)
    if price:
        deployment["price"] = price
    out.deployments[name] = deployment
    out.route_groups.setdefault(group, {"deployments": []})["deployments"].append(name)
    limit = {k: int(v) for k in ("rpm", "tpm") for v in [params.get(k, entry.get(k))] if _positive_int(v)}
    if limit:
        out.limits[name] = limit
    weight = params.get("weight") or limit.get("rpm") or limit.get("tpm") or 1
    out.weights.setdefault(group, {})[name] = float(weight)
    for key in sorted(set(params) - _MAPPED_PARAMS):
        out.note(f"{where}.litellm_params.{key}", f"no equivalent: {_WHY.get(key, 'tollway has no such setting')}")
    info = _section(entry.get("model_info"))
    for key in sorted(set(info) - {"input_cost_per_token", "output_cost_per_token"}):
        out.note(f"{where}.model_info.{key}", "no equivalent: the catalog and the deployment's own fields describe "
                                              "a model (context_window, max_output, capabilities)")
    for key in sorted(set(entry) - {"model_name", "litellm_params", "model_info", "rpm", "tpm"}):
        out.note(f"{where}.{key}", "no equivalent: tollway has no such setting")


def _split(model: str) -> tuple[str, str]:
    """LiteLLM's provider prefix and the model sent upstream; no prefix means LiteLLM infers OpenAI."""
    prefix, sep, rest = model.partition("/")
    if not sep:
        return "openai", model
    return prefix, rest


def _base_url(where: str, prefix: str, kind: ProviderKind, params: dict, out: Translation) -> str | None:
    given = params.get("api_base") or params.get("base_url")
    if isinstance(given, str) and given.startswith(ENV_PREFIX):
        variable = given[len(ENV_PREFIX):]
        given = os.environ.get(variable)
        if not given:
            out.note(where, f"api_base comes from ${variable}, which is not set here: left out (tollway needs the "
                            f"URL in the config; set it and run the migration again)")
            return None
    if not given:
        if kind.base_url is None:
            out.note(where, f"{prefix}/ needs an api_base: left out")
        return kind.base_url
    url = str(given).rstrip("/")
    if prefix == "azure":
        url = url if url.endswith("/openai/v1") else f"{url}/openai/v1"
    elif kind.kind in APPEND_V1 and not url.endswith("/v1"):
        url = f"{url}/v1"
    if not url.startswith(("http://", "https://")):
        out.note(where, f"api_base {url!r} is not an http(s) URL: left out")
        return None
    return url


def _provider(where: str, prefix: str, kind: ProviderKind, base_url: str, params: dict, out: Translation) -> str:
    """The tollway provider for this entry, shared with entries that reach the same endpoint the same way."""
    key_env = _key_env(where, kind, params, out)
    timeouts = {}
    if _positive_number(params.get("timeout")):
        timeouts["response_s"] = float(params["timeout"])
    if _positive_number(params.get("stream_timeout")):
        timeouts["first_byte_s"] = float(params["stream_timeout"])
    identity = (kind.kind, base_url, key_env, tuple(sorted(timeouts.items())))
    if identity in out._provider_keys:
        return out._provider_keys[identity]
    base = prefix if prefix == "azure" or prefix not in PREFIXES else kind.kind
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base)
    name, n = base, 2
    while name in out.providers:
        name, n = f"{base}-{n}", n + 1
    provider: dict = {"kind": kind.kind, "base_url": base_url, "jurisdiction": kind.jurisdiction}
    if kind.dialect:
        provider["dialect"] = kind.dialect
    if key_env:
        provider["api_key_env"] = key_env
    if timeouts:
        provider["timeouts"] = timeouts
    out.providers[name] = provider
    out._provider_keys[identity] = name
    if kind.note:
        out.note_once(f"kind:{prefix}", f"providers.{name}", kind.note)
    return name


def _key_env(where: str, kind: ProviderKind, params: dict, out: Translation) -> str | None:
    value = params.get("api_key")
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "fake-key")):
        return None
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return value[len(ENV_PREFIX):]
    variable = f"{kind.kind.upper()}_API_KEY"
    out.note(where, f"api_key is written in the file: it is not copied (a config is reviewed and committed); "
                    f"the provider reads ${variable} instead: export it with that key")
    return variable


def _deployment_name(upstream: str, out: Translation) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", upstream).strip("-") or "deployment"
    name, n = base, 2
    while name in out.deployments:
        name, n = f"{base}-{n}", n + 1
    return name


def _price(where: str, params: dict, info: object, out: Translation) -> dict | None:
    """input/output_cost_per_token (USD per token, in litellm_params or model_info) as USD per million."""
    sources = [params, info if isinstance(info, dict) else {}]
    costs = {}
    for field_name, ours in (("input_cost_per_token", "input"), ("output_cost_per_token", "output")):
        for source in sources:
            if field_name in source:
                try:
                    costs[ours] = format((Decimal(str(source[field_name])) * 1_000_000).normalize(), "f")
                except InvalidOperation:
                    out.note(where, f"{field_name} {source[field_name]!r} is not a number: not used")
                break
    if len(costs) == 1:
        out.note(where, "only one of input_cost_per_token and output_cost_per_token is given: the catalog prices it")
        return None
    return costs or None


def _section(value: object) -> dict:
    """A mapping section of an entry (litellm_params, model_info); anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0

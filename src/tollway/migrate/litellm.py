"""A LiteLLM proxy config.yaml, translated into a tollway config plus the list of what did not translate.

The result is checked with tollway's own config loader before it is returned, so a translation that
would not start the gateway is a bug reported here, not a surprise at `tollway serve`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from tollway.migrate.litellm_models import Translation, translate_model_list
from tollway.migrate.litellm_settings import translate_general_settings, translate_litellm_settings, translate_router

KNOWN_SECTIONS = ("model_list", "router_settings", "litellm_settings", "general_settings")


class MigrationError(Exception):
    """The LiteLLM file cannot be translated into a working tollway config; the message says why."""


@dataclass(frozen=True)
class Migrated:
    config: dict
    notes: list[str]


def translate(raw: object) -> Migrated:
    """The tollway config (a dict ready for YAML) for a parsed LiteLLM config, and the notes."""
    if not isinstance(raw, dict) or "model_list" not in raw:
        raise MigrationError("not a LiteLLM proxy config: it has no model_list")
    out = Translation()
    config: dict = {}
    translate_model_list(raw["model_list"], out)
    if not out.deployments:
        raise MigrationError("no model in model_list could be translated:\n  " + "\n  ".join(out.notes))
    translate_litellm_settings(raw.get("litellm_settings"), out)
    translate_router(raw.get("router_settings"), out, config)
    translate_general_settings(raw.get("general_settings"), out, config)
    if raw.get("environment_variables"):
        out.note("environment_variables", "no equivalent: tollway reads no environment from its config; set "
                                          "these in the environment that starts it")
    for key in sorted(set(raw) - {*KNOWN_SECTIONS, "environment_variables"}):
        out.note(key, "no equivalent: not a section tollway knows")
    result = {**config, "providers": out.providers, "deployments": out.deployments,
              "route_groups": out.route_groups}
    if out.limits:
        result["limits"] = {"deployments": out.limits}
    _check(result)
    return Migrated(result, out.notes)


def _check(config: dict) -> None:
    from tollway.config import Config, _describe

    try:
        Config.model_validate(config)
    except ValidationError as exc:
        raise MigrationError(f"the translation does not load as a tollway config:\n{_describe(exc)}") from None

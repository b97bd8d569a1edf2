"""Config sections routing owns: deployments and route groups (see docs/gateway.md and docs/routing.md).

A route group is a public model name with a candidate set and a strategy. The keys every group has are
fields here; a strategy's own keys (weights, tiers, the latency SLO) are written flat beside them in the
YAML and validated by that strategy's options model (routing/strategies/). A key of another strategy is
refused, so a typo'd strategy cannot leave an option silently unused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tollway.core.config_base import Strict as _Strict
from tollway.routing.strategies.base import StrategyOptions
from tollway.routing.strategies.registry import DEFAULT, OPTION_OWNERS, STRATEGIES, names_text

CAPABILITIES = ("vision", "tools", "json", "reasoning", "embeddings", "completions")
COMPLEXITY_LEVELS = ("low", "medium", "high")
PREFERENCE_TOPICS = ("zh", "code")  # what a request can be recognised as, to prefer deployments strong_in it


class PriceOverride(_Strict):
    """Prices for one deployment, USD per million tokens, when the catalog has none or they differ."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(None, ge=0)
    cache_write: Decimal | None = Field(None, ge=0)


class Deployment(_Strict):
    provider: str
    model: str = Field(description="model name sent upstream")
    aliases: list[str] = Field(default_factory=list, description="public names served by this deployment alone")
    context_window: int = Field(8192, gt=0, description="default: the catalog's window for the model, else 8192")
    max_output: int = Field(4096, gt=0)
    capabilities: list[str] = Field(default_factory=list, description="default: the catalog's list for the model")
    strong_in: list[str] | None = Field(None, description="e.g. [zh, code]; default: the catalog's list")
    metrics_url: str | None = Field(None, description="Prometheus endpoint of a self-hosted backend; default: "
                                                      "base_url without /v1, plus /metrics")
    price: PriceOverride | None = None

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CAPABILITIES))
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; known: {', '.join(CAPABILITIES)}")
        return value

    @field_validator("metrics_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"metrics_url {value!r} must start with http:// or https://")
        return value


class ComplexitySettings(_Strict):
    """How a request's complexity (low / medium / high) is judged for `strategy: tiers`."""

    classifier: Literal["heuristic", "model"] = "heuristic"
    deployment: str | None = Field(None, description="model classifier: the cheap deployment asked to grade")
    timeout_ms: float = Field(1500, gt=0, description="model classifier: past this, the heuristic decides")
    medium_at: float = Field(0.3, ge=0, le=1, description="heuristic score from which a request is medium")
    high_at: float = Field(0.6, ge=0, le=1, description="heuristic score from which a request is high")

    @model_validator(mode="after")
    def _consistent(self) -> "ComplexitySettings":
        if self.classifier == "model" and not self.deployment:
            raise ValueError("classifier: model needs `deployment` (the cheap deployment that grades requests)")
        if self.medium_at > self.high_at:
            raise ValueError(f"medium_at ({self.medium_at}) must not be above high_at ({self.high_at})")
        return self


class HedgeSettings(_Strict):
    """Race the next candidate when the first has not produced a token in time."""

    after_ms: float | None = Field(None, gt=0, description="fixed delay; default: the observed percentile")
    percentile: float = Field(95, gt=0, lt=100, description="of the first deployment's time to first token")
    min_samples: int = Field(20, ge=1, description="samples before the observed percentile is trusted")
    fallback_ms: float = Field(1000, gt=0, description="delay used until min_samples are observed")
    budget_percent: float = Field(10, gt=0, le=100, description="at most this many hedges per 100 requests")


class ShadowSettings(_Strict):
    """Mirror a sampled share of requests to another deployment, in the background."""

    deployment: str
    sample: float = Field(0.05, ge=0, le=1, description="share of the group's requests mirrored")
    max_in_flight: int = Field(32, ge=1, description="mirrors running at once; more are dropped, never queued")


class SpilloverSettings(_Strict):
    """When a self-hosted deployment counts as saturated, so requests spill to the next candidate."""

    max_in_flight: int | None = Field(None, ge=1, description="this gateway's requests running on one deployment")
    waiting_above: float | None = Field(0, ge=0, description="backend queue (vllm:num_requests_waiting, "
                                                              "sglang:num_queue_reqs) above which it spills")
    kv_cache_above: float | None = Field(0.95, gt=0, le=1, description="KV-cache usage above which it spills")
    scrape_interval_s: float = Field(2.0, gt=0, description="how often backend metrics are read")


class RouteGroup(_Strict):
    deployments: list[str] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    strategy: str = Field(DEFAULT, description="how candidates are ordered: " + ", ".join(STRATEGIES))
    residency: list[str] | None = Field(None, description="jurisdictions this group's requests may go to")
    expected_output_tokens: int = Field(256, ge=1, description="cheapest/fastest: output assumed when "
                                                                "max_tokens is not given")
    prefer_strong_in: dict[str, float] = Field(default_factory=dict, description="e.g. {zh: 0.3}: a request "
                                               "mostly in Chinese favours deployments strong_in zh by 30%")
    complexity: ComplexitySettings = ComplexitySettings()
    hedge: HedgeSettings | None = None
    shadow: ShadowSettings | None = None
    spillover: SpilloverSettings | None = None
    _strategy_options: StrategyOptions = PrivateAttr()

    @property
    def strategy_options(self) -> StrategyOptions:
        """The strategy's own keys of this group, validated by its options model."""
        return self._strategy_options

    @model_validator(mode="wrap")
    @classmethod
    def _with_strategy_options(cls, data: Any, handler: Any) -> "RouteGroup":
        """Split the strategy's keys from the common ones; each part's errors keep their key path, and a
        group with mistakes in both parts has all of them reported at once."""
        if not isinstance(data, dict):
            return handler(data)
        name = data.get("strategy", DEFAULT)
        strategy = STRATEGIES.get(name) if isinstance(name, str) else None
        given = {key: value for key, value in data.items() if key in OPTION_OWNERS}
        if strategy is not None:
            for key in given:
                if key not in strategy.options.model_fields:
                    raise ValueError(f"{key} only applies to strategy: {OPTION_OWNERS[key]} (this group's strategy "
                                     f"is {name})")
        failed: list[ValidationError] = []
        try:
            group = handler({key: value for key, value in data.items() if key not in OPTION_OWNERS})
        except ValidationError as exc:
            failed.append(exc)
        if strategy is not None:
            members = data.get("deployments")
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                members = None  # the deployments' own error is reported; the options are checked alone
            try:
                options = strategy.options.model_validate(given, context={"deployments": members})
            except ValidationError as exc:
                failed.append(exc)
        if failed:  # an unknown strategy's own error is among them
            raise _together(cls.__name__, failed)
        group._strategy_options = options
        return group

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": names_text()})
        return value

    @field_validator("residency")
    @classmethod
    def _jurisdictions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [item.strip().lower() for item in value]
        if not cleaned or any(not item for item in cleaned):
            raise ValueError("list at least one jurisdiction, e.g. [eu, self-hosted]; leave residency out for any")
        return cleaned

    @field_validator("prefer_strong_in")
    @classmethod
    def _preferences(cls, value: dict[str, float]) -> dict[str, float]:
        for topic, weight in value.items():
            if topic not in PREFERENCE_TOPICS:
                raise ValueError(f"{topic!r} cannot be recognised in a request; use one of {', '.join(PREFERENCE_TOPICS)}")
            if not 0 <= weight < 1:
                raise ValueError(f"{topic}: weight {weight} must be at least 0 and below 1")
        return value


def _together(title: str, failed: list[ValidationError]) -> ValidationError:
    """One error listing every mistake of a group's two parts (their key paths kept)."""
    if len(failed) == 1:
        return failed[0]
    try:
        errors = [e for exc in failed for e in exc.errors()]
        return ValidationError.from_exception_data(title, errors)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):  # an error type that cannot be rebuilt: the common part's first
        return failed[0]

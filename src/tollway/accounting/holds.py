"""The most a request can cost: what a budget holds at admission so that settling can never overshoot.

A hold must be an upper bound, not a guess:
- prompt tokens: at most the request body's size in bytes (a token is at least one byte of the text it
  encodes, and JSON only adds bytes), plus `tokens_per_image` for each image part;
- completion tokens: `max_tokens` (or `max_completion_tokens`) if given, else the largest `max_output`
  of the group's deployments, times `n`; embeddings have none;
- prices: the highest rate of any deployment in the route group (whichever serves it, failover
  included), for prompt tokens the highest of input, cache-write and cached rates, and the prices in force
  now and a minute ago (a peak/off-peak boundary may fall between arrival and admission);
- routing's own spending, which the ledger row adds to the answer's cost: a group that hedges may pay
  two deployments (the two dearest are held), and a `classifier: model` grades the prompt first (its
  deployment is held for the prompt plus `CLASSIFIER_EXTRA_TOKENS` of instructions, and a short answer).
Rates the catalog does not know count as zero, as they do in the ledger (such rows are marked unpriced).
Token estimates for rate limits are different: a best guess (tollway's 4-characters-a-token estimate),
corrected with the real count at settle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tollway.accounting.nano_usd import to_nano
from tollway.accounting.pricing import DeploymentPricer
from tollway.config import Config, Deployment
from tollway.gateway.request import ClientRequest, prompt_text
from tollway.protocol.usage import estimate_tokens

_PROMPT_RATES = ("input", "cached_input", "cache_write", "cache_write_1h")
_IMAGE_TYPES = ("image_url", "image", "input_image")
_MINUTE = timedelta(minutes=1)
_TICK = timedelta(microseconds=1)
CLASSIFIER_EXTRA_TOKENS = 2048   # the grading instructions around the client's prompt
CLASSIFIER_OUTPUT_TOKENS = 16    # it asks for one word (max_tokens 3); held with margin


@dataclass(frozen=True, slots=True)
class Candidate:
    """What pricing needs of a deployment (the same fields DeploymentPricer reads from a RoutedDeployment)."""

    name: str
    kind: str
    upstream_model: str
    config: Deployment
    jurisdiction: str

    @property
    def max_output(self) -> int:
        return self.config.max_output


@dataclass(frozen=True, slots=True)
class Hold:
    nano: int               # the budget hold
    prompt_bound: int
    completion_bound: int
    estimated_tokens: int   # for rate limits


class HoldCalculator:
    def __init__(self, config: Config, pricer: DeploymentPricer, tokens_per_image: int) -> None:
        self.pricer = pricer
        self.tokens_per_image = tokens_per_image
        self._converted = 0  # 1 once a CNY price was seen: its USD rates are rounded at 40 digits, hold 1 nano more
        self._cache: dict[tuple[str, int], tuple[Decimal, Decimal]] = {}
        self._cache_minute = -1
        self.groups: dict[str, list[Candidate]] = {}
        self.hedged: set[str] = set()
        self.classifiers: dict[str, Candidate] = {}
        for name, group in config.route_groups.items():
            self.groups[name] = [_candidate(d, config) for d in group.deployments]
            if getattr(group, "hedge", None) is not None:
                self.hedged.add(name)
            complexity = getattr(group, "complexity", None)
            if getattr(complexity, "classifier", None) == "model" and complexity.deployment in config.deployments:
                self.classifiers[name] = _candidate(complexity.deployment, config)
        for name, dep in config.deployments.items():
            if dep.aliases:
                self.groups.setdefault(name, [_candidate(name, config)])

    def hold(self, creq: ClientRequest, group: str, at: datetime | None = None) -> Hold:
        candidates = self.groups.get(group, [])
        prompt = self.prompt_bound(creq)
        completion = self.completion_bound(creq, candidates)
        at = at or datetime.now(timezone.utc)
        costs = sorted((self._worst(c, at, prompt, completion) for c in candidates), reverse=True)
        worst = sum(costs[:2 if group in self.hedged else 1], Decimal(0))
        classifier = self.classifiers.get(group)
        if classifier is not None:
            worst += self._worst(classifier, at, prompt + CLASSIFIER_EXTRA_TOKENS, CLASSIFIER_OUTPUT_TOKENS)
        estimate = estimate_tokens(prompt_text(creq)) + completion
        return Hold(to_nano(worst.scaleb(-6)) + self._converted, prompt, completion, estimate)

    def prompt_bound(self, creq: ClientRequest) -> int:
        return creq.raw_size + self.tokens_per_image * _image_parts(creq)

    @staticmethod
    def completion_bound(creq: ClientRequest, candidates: list[Candidate]) -> int:
        if creq.endpoint == "embeddings":
            return 0
        n = creq.body.get("n")
        choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
        limit = creq.max_tokens or max((c.max_output for c in candidates), default=0)
        return limit * choices

    def _worst(self, candidate: Candidate, at: datetime, prompt: int, completion: int) -> Decimal:
        """USD x 1e6 (rates are per million tokens): the most this deployment can charge for the request."""
        prompt_rate, output_rate = self._rates(candidate, at, prompt)
        return prompt * prompt_rate + completion * output_rate

    def _rates(self, candidate: Candidate, at: datetime, prompt_tokens: int) -> tuple[Decimal, Decimal]:
        """The highest (prompt, output) rates in force within a minute of `at`, cached per minute and per
        power-of-two prompt size: rounding the prompt up only moves it into a dearer (or the same) tier."""
        minute = int(at.timestamp() // 60)
        if minute != self._cache_minute:
            self._cache, self._cache_minute = {}, minute
        bucket = 1 << max(prompt_tokens - 1, 0).bit_length()
        key = (candidate.name, bucket)
        rates = self._cache.get(key)
        if rates is None:
            rates = self._cache[key] = self._highest_rates(candidate, minute, bucket)
        return rates

    def _highest_rates(self, candidate: Candidate, minute: int, prompt_tokens: int) -> tuple[Decimal, Decimal]:
        prompt_rate = output_rate = Decimal(0)
        start = datetime.fromtimestamp(minute * 60, timezone.utc)
        for moment in (start - _MINUTE, start, start + _MINUTE - _TICK):  # now, and a minute before any "now"
            for tokens in (prompt_tokens, 0):
                price = self.pricer.price(candidate, moment, tokens)  # type: ignore[arg-type]
                if price is None:
                    continue
                if price.original is not None and price.original.get("cny_per_usd"):
                    self._converted = 1
                rates = [getattr(price, name) for name in _PROMPT_RATES]
                prompt_rate = max([prompt_rate, *(r for r in rates if r is not None and r.is_finite())])
                if price.output.is_finite():
                    output_rate = max(output_rate, price.output)
        return prompt_rate, output_rate


def _candidate(name: str, config: Config) -> Candidate:
    dep = config.deployments[name]
    provider = config.providers[dep.provider]
    return Candidate(name, provider.kind, dep.model, dep, provider.jurisdiction)


def _image_parts(creq: ClientRequest) -> int:
    if creq.endpoint != "chat":
        return 0
    count = 0
    for message in creq.body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") in _IMAGE_TYPES)
    return count

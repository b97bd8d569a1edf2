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

It runs on every request, so the prices are not looked up per request: the highest rates of a group's
deployments (and of its classifier) are turned into exact integers once per minute and prompt-size
bucket, and a hold is then a few integer multiplications, rounded up to whole nano-dollars once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import NamedTuple

from tollway.accounting.counters.base import filled
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config, Deployment
from tollway.core.money import MAX_NANO, NANO_PER_USD
from tollway.core.request import ClientRequest, prompt_text
from tollway.core.usage import estimate_tokens

_PROMPT_RATES = ("input", "cached_input", "cache_write", "cache_write_1h")
_IMAGE_TYPES = ("image_url", "image", "input_image")
_MINUTE = timedelta(minutes=1)
_TICK = timedelta(microseconds=1)
CLASSIFIER_EXTRA_TOKENS = 2048   # the grading instructions around the client's prompt
CLASSIFIER_OUTPUT_TOKENS = 16    # it asks for one word (max_tokens 3); held with margin
_EXACT = Context(prec=100)       # rates carry at most 40 significant digits (catalog conversions)
# Bytes a client's `"max_tokens": N` can add to a body that had none (with a JSON encoder's spaces and
# newline); the advice on a refusal leaves room for them, since the hold counts body bytes.
MAX_TOKENS_FIELD_BYTES = 40


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


class Hold(NamedTuple):
    nano: int               # the budget hold
    prompt_bound: int
    completion_bound: int
    estimated_tokens: int   # for rate limits


class _GroupRates(NamedTuple):
    """A group's highest rates for one minute and prompt-size bucket, as integers: USD per million tokens
    times 10**scale, so multiplying by token counts stays exact whatever the rates' decimals."""

    candidates: tuple[tuple[int, int], ...]   # (prompt rate, output rate) per deployment
    classifier: tuple[int, int] | None
    divisor: int                               # units per nano-dollar: 10**(scale + 6 - 9), or 0 when scale < 3
    multiplier: int                            # nano-dollars per unit when scale < 3


class HoldCalculator:
    def __init__(self, config: Config, pricer: DeploymentPricer, tokens_per_image: int) -> None:
        self.pricer = pricer
        self.tokens_per_image = tokens_per_image
        self._converted = 0  # 1 once a CNY price was seen: its USD rates are rounded at 40 digits, hold 1 nano more
        self._cache: dict[tuple[str, int], _GroupRates] = {}
        self._cache_minute = -1
        self.groups: dict[str, list[Candidate]] = {}
        self.hedged: set[str] = set()
        self.classifiers: dict[str, Candidate] = {}
        for name, group in config.route_groups.items():
            self.groups[name] = [_candidate(d, config) for d in group.deployments]
            if getattr(group, "hedge", None) is not None:
                self.hedged.add(name)
            complexity = getattr(group, "complexity", None)
            if complexity is not None and getattr(complexity, "classifier", None) == "model" \
                    and complexity.deployment in config.deployments:
                self.classifiers[name] = _candidate(complexity.deployment, config)
        for name, dep in config.deployments.items():
            if dep.aliases:
                self.groups.setdefault(name, [_candidate(name, config)])
        self._max_output = {name: max((c.max_output for c in cands), default=0) for name, cands in self.groups.items()}

    def hold(self, creq: ClientRequest, group: str, at: datetime | None = None) -> Hold:
        prompt = self._prompt_bound(creq)
        completion = self._completion_bound(creq, self._max_output.get(group, 0))
        minute = int((at.timestamp() if at is not None else time.time()) // 60)
        nano = self._nano(group, self._rates(group, minute, prompt), prompt, completion)
        if nano > MAX_NANO:
            raise ValueError(f"a hold of ${nano / NANO_PER_USD:,.2f} is beyond what a budget counter holds exactly")
        estimate = estimate_tokens(prompt_text(creq)) + completion
        return filled(Hold, (nano, prompt, completion, estimate))

    def largest_max_tokens(self, creq: ClientRequest, group: str, room_nano: int, at: datetime | None = None) -> int:
        """The largest max_tokens whose hold fits in `room_nano` now (0 when even max_tokens 1 does not fit):
        the same exact integer arithmetic as hold(), searched by bisection because the hold only grows with
        max_tokens. Called on a refusal only, to tell the client what would pass. A body without max_tokens
        is counted MAX_TOKENS_FIELD_BYTES longer: the retry will carry the field."""
        prompt = self._prompt_bound(creq) + (MAX_TOKENS_FIELD_BYTES if creq.max_tokens is None else 0)
        minute = int((at.timestamp() if at is not None else time.time()) // 60)
        rates = self._rates(group, minute, prompt)
        body = creq.body
        n = body.get("n")
        choices = n if n.__class__ is int and n > 0 else 1
        low, high = 0, max(creq.max_tokens or self._max_output.get(group, 0), 1)
        if self._nano(group, rates, prompt, high * choices) <= room_nano:
            return high
        while low + 1 < high:  # invariant: max_tokens `low` fits (or is 0), `high` does not
            middle = (low + high) // 2
            if self._nano(group, rates, prompt, middle * choices) <= room_nano:
                low = middle
            else:
                high = middle
        return low

    def _prompt_bound(self, creq: ClientRequest) -> int:
        prompt = creq.raw_size
        if creq.endpoint == "chat":
            prompt += self.tokens_per_image * _image_parts(creq.body.get("messages"))
        return prompt

    def _nano(self, group: str, rates: _GroupRates, prompt: int, completion: int) -> int:
        """The worst case of `prompt` and `completion` tokens at the group's rates, in whole nano-dollars
        (rounded up), routing's own spending included."""
        if group in self.hedged and len(rates.candidates) > 1:
            costs = sorted((prompt * p + completion * o for p, o in rates.candidates), reverse=True)
            worst = costs[0] + costs[1]
        else:
            worst = 0
            for p, o in rates.candidates:
                cost = prompt * p + completion * o
                if cost > worst:
                    worst = cost
        if rates.classifier is not None:
            worst += (prompt + CLASSIFIER_EXTRA_TOKENS) * rates.classifier[0] \
                + CLASSIFIER_OUTPUT_TOKENS * rates.classifier[1]
        nano = worst * rates.multiplier if rates.multiplier else -(-worst // rates.divisor)
        return nano + self._converted

    @staticmethod
    def _completion_bound(creq: ClientRequest, max_output: int) -> int:
        if creq.endpoint == "embeddings":
            return 0
        body = creq.body
        n = body.get("n")
        choices = n if n.__class__ is int and n > 0 else 1
        limit = creq.max_tokens or max_output
        return limit * choices

    def _rates(self, group: str, minute: int, prompt_tokens: int) -> _GroupRates:
        """The group's rates in force within a minute of `minute`, cached per minute and per power-of-two
        prompt size: rounding the prompt up only moves it into a dearer (or the same) tier."""
        key = (group, 1 << max(prompt_tokens - 1, 0).bit_length())
        if minute == self._cache_minute:
            found = self._cache.get(key)
            if found is not None:
                return found
        else:
            self._cache, self._cache_minute = {}, minute
        found = self._cache[key] = self._group_rates(group, minute, key[1])
        return found

    def _group_rates(self, group: str, minute: int, prompt_tokens: int) -> _GroupRates:
        decimal_rates = [self._highest_rates(c, minute, prompt_tokens) for c in self.groups.get(group, [])]
        classifier = self.classifiers.get(group)
        if classifier is not None:
            decimal_rates.append(self._highest_rates(classifier, minute, prompt_tokens + CLASSIFIER_EXTRA_TOKENS))
        scale = max((-_exponent(rate) for pair in decimal_rates for rate in pair), default=0)
        scale = max(scale, 0)
        ints = [(int(p.scaleb(scale, _EXACT)), int(o.scaleb(scale, _EXACT))) for p, o in decimal_rates]
        graded = ints.pop() if classifier is not None else None
        # units are 10**-(scale + 6) USD; a nano-dollar is 10**-9 USD
        if scale <= 3:
            return _GroupRates(tuple(ints), graded, 0, 10 ** (3 - scale))
        return _GroupRates(tuple(ints), graded, 10 ** (scale - 3), 0)

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
        return prompt_rate.normalize(_EXACT), output_rate.normalize(_EXACT)


def _exponent(rate: Decimal) -> int:
    """A price's decimal exponent; prices are finite numbers, so never NaN's or Infinity's letter code."""
    exponent = rate.as_tuple().exponent
    assert isinstance(exponent, int), rate
    return exponent


def _candidate(name: str, config: Config) -> Candidate:
    dep = config.deployments[name]
    provider = config.providers[dep.provider]
    return Candidate(name, provider.kind, dep.model, dep, provider.jurisdiction)


def _image_parts(messages: object) -> int:
    """Image parts in a chat's messages; text-only messages (string content) cost one type check each."""
    count = 0
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if message.__class__ is dict else None
        if content.__class__ is list:
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") in _IMAGE_TYPES)
    return count

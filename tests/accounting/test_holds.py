"""The hold is an upper bound on what a request can cost, whichever deployment of its group serves it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import orjson
import pytest

from tollway.accounting.holds import CLASSIFIER_EXTRA_TOKENS, CLASSIFIER_OUTPUT_TOKENS, HoldCalculator
from tollway.catalog import Catalog
from tollway.catalog.cost import cost_usd
from tollway.catalog.deployment_prices import DeploymentPricer
from tollway.config import Config
from tollway.core.money import to_nano
from tollway.core.request import parse_request
from tollway.core.usage import Usage
from tollway.emulator.tokens import messages_tokens

AT = datetime(2026, 11, 22, 6, 40, tzinfo=timezone.utc)


def config() -> Config:
    provider = {"kind": "vllm", "base_url": "http://127.0.0.1:1/v1", "jurisdiction": "eu"}
    return Config.model_validate({
        "providers": {"p": provider, "q": {**provider, "jurisdiction": "us"}},
        "deployments": {
            "cheap": {"provider": "p", "model": "a", "max_output": 1000, "price": {"input": "1", "output": "2"}},
            "writer": {"provider": "q", "model": "b", "max_output": 3000,
                       "price": {"input": "3", "output": "1", "cache_write": "5", "cached_input": "0.3"}},
            "solo": {"provider": "p", "model": "c", "aliases": ["solo-model"], "price": {"input": "7", "output": "9"}},
        },
        "route_groups": {"chat": {"deployments": ["cheap", "writer"]}},
    })


@pytest.fixture
def calc() -> HoldCalculator:
    return HoldCalculator(config(), DeploymentPricer(Catalog.load()), tokens_per_image=1600)


def request(body: dict, endpoint: str = "chat"):
    return parse_request(endpoint, orjson.dumps(body))


def test_hold_is_the_costliest_candidate_at_its_highest_prompt_rate(calc) -> None:
    creq = request({"model": "chat", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 20})
    hold = calc.hold(creq, "chat", AT)
    assert (hold.prompt_bound, hold.completion_bound) == (creq.raw_size, 20)
    cheap = creq.raw_size * Decimal(1) + 20 * Decimal(2)
    writer = creq.raw_size * Decimal(5) + 20 * Decimal(1)  # cache writes are its dearest prompt tokens
    assert hold.nano == to_nano(max(cheap, writer).scaleb(-6))


def test_without_max_tokens_the_largest_max_output_is_held_times_n(calc) -> None:
    creq = request({"model": "chat", "messages": [{"role": "user", "content": "hi"}], "n": 2})
    assert calc.hold(creq, "chat", AT).completion_bound == 2 * 3000
    assert calc.hold(request({"model": "solo-model", "messages": [{"role": "user", "content": "hi"}]}), "solo",
                     AT).completion_bound == 4096, "a deployment's own alias group"


def test_embeddings_hold_no_completion_and_images_hold_their_bound(calc) -> None:
    embed = request({"model": "chat", "input": "some text"}, "embeddings")
    assert calc.hold(embed, "chat", AT).completion_bound == 0
    parts = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "http://x/a.png"}},
             {"type": "image_url", "image_url": {"url": "http://x/b.png"}}]
    creq = request({"model": "chat", "messages": [{"role": "user", "content": parts}], "max_tokens": 5})
    assert calc.hold(creq, "chat", AT).prompt_bound == creq.raw_size + 2 * 1600


@pytest.mark.parametrize("content", ["", "Hello there", "x" * 1001, "数据驻留" * 50, "emoji 🚀 " * 30])
def test_hold_covers_the_real_cost_of_any_served_answer(calc, content: str) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}]
    creq = request({"model": "chat", "messages": messages, "max_tokens": 50})
    hold = calc.hold(creq, "chat", AT)
    prompt = messages_tokens(messages)  # how the emulator (and roughly every tokenizer) counts
    assert prompt <= hold.prompt_bound
    worst_usage = Usage(prompt_tokens=prompt, cache_write_tokens=prompt, completion_tokens=50)
    for name in ("cheap", "writer"):
        price = calc.pricer.price(calc.groups["chat"][["cheap", "writer"].index(name)], AT, prompt)
        assert to_nano(cost_usd(worst_usage, price)) <= hold.nano


def test_unpriced_deployments_hold_nothing_as_the_ledger_charges_nothing() -> None:
    raw = config().model_dump(mode="json", exclude_none=True)
    raw["deployments"] = {"mystery": {"provider": "p", "model": "not-in-catalog"}}
    raw["providers"]["p"]["kind"] = "openai"
    raw["route_groups"] = {"chat": {"deployments": ["mystery"]}}
    calc = HoldCalculator(Config.model_validate(raw), DeploymentPricer(Catalog.load()), 1600)
    creq = request({"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    assert calc.hold(creq, "chat", AT).nano == 0


def test_routing_spend_is_held_too_hedges_pay_two_and_a_classifier_grades_first() -> None:
    base = config()
    hedge_group = SimpleNamespace(deployments=["cheap", "writer"], hedge=object(), complexity=None)
    graded_group = SimpleNamespace(deployments=["cheap"], hedge=None,
                                   complexity=SimpleNamespace(classifier="model", deployment="solo"))
    shaped = SimpleNamespace(route_groups={"hedged": hedge_group, "graded": graded_group},
                             deployments=base.deployments, providers=base.providers)
    calc = HoldCalculator(shaped, DeploymentPricer(Catalog.load()), 1600)  # type: ignore[arg-type]
    creq = request({"model": "hedged", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10})
    p = creq.raw_size
    cheap, writer = p * Decimal(1) + 10 * Decimal(2), p * Decimal(5) + 10 * Decimal(1)
    assert calc.hold(creq, "hedged", AT).nano == to_nano((cheap + writer).scaleb(-6))
    grader = (p + CLASSIFIER_EXTRA_TOKENS) * Decimal(7) + CLASSIFIER_OUTPUT_TOKENS * Decimal(9)
    assert calc.hold(creq, "graded", AT).nano == to_nano((cheap + grader).scaleb(-6))


def test_the_largest_max_tokens_that_fits_is_exact(calc) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 2000}
    creq = request(body)
    room = calc.hold(request({**body, "max_tokens": 1700}), "chat", AT).nano + 1  # 1700 fits, 1701 does not
    largest = calc.largest_max_tokens(creq, "chat", room, AT)
    assert largest == 1700
    assert calc.hold(request({**body, "max_tokens": largest}), "chat", AT).nano <= room
    assert calc.hold(request({**body, "max_tokens": largest + 1}), "chat", AT).nano > room


def test_without_max_tokens_the_advice_leaves_room_for_the_field_it_adds(calc) -> None:
    bare = {"model": "chat", "messages": [{"role": "user", "content": "Hello there"}]}
    room = calc.hold(request({**bare, "max_tokens": 100}), "chat", AT).nano * 3
    largest = calc.largest_max_tokens(request(bare), "chat", room, AT)
    assert 100 < largest < 3000
    retried = request(bare | {"max_tokens": largest})
    assert calc.hold(retried, "chat", AT).nano <= room, "the retry the message asks for is admitted"
    spaced = parse_request("chat", b'{"model": "chat", "messages": [{"role": "user", "content": "Hello there"}],\n'
                                   b'    "max_tokens": ' + str(largest).encode() + b'}')
    assert calc.hold(spaced, "chat", AT).nano <= room, "whatever spaces the client's encoder adds"


def test_no_max_tokens_fits_when_the_prompt_alone_is_too_dear(calc) -> None:
    creq = request({"model": "chat", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 5})
    assert calc.largest_max_tokens(creq, "chat", 10, AT) == 0

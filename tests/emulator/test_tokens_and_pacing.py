"""Token counting, output planning, chunk scheduling and fault selection (no processes)."""

from __future__ import annotations

import random

import pytest

from tollway.emulator.faults import model_rng, pick_fault
from tollway.emulator.pacing import build_schedule
from tollway.emulator.profiles import Fault, ModelProfile
from tollway.emulator.tokens import IMAGE_TOKENS, messages_tokens, output_text, plan_output, prompt_tokens


def test_prompt_count_is_ceil_chars_over_four_plus_four_per_message() -> None:
    messages = [{"role": "system", "content": "abcde"}, {"role": "user", "content": "12345678"}]
    assert messages_tokens(messages) == (2 + 4) + (2 + 4)


def test_image_parts_cost_a_fixed_amount_and_system_counts_as_a_message() -> None:
    content = [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "data:..."}}]
    assert messages_tokens([{"role": "user", "content": content}]) == 1 + IMAGE_TOKENS + 4
    assert messages_tokens([{"role": "user", "content": "abcd"}], system="abcdefgh") == (1 + 4) + (2 + 4)


def test_completion_prompts_and_token_ids() -> None:
    assert prompt_tokens("abcdefghi") == 3
    assert prompt_tokens(["abcd", "abcd"]) == 2
    assert prompt_tokens([1, 2, 3, 4, 5]) == 5


def test_output_text_is_deterministic_words() -> None:
    assert output_text(3) == "tok0 tok1 tok2"
    assert output_text(0) == ""


@pytest.mark.parametrize("limit, force, expected, finish", [
    (None, False, 16, "stop"), (5, False, 5, "length"), (40, False, 16, "stop"), (40, True, 40, "length")])
def test_output_length_is_min_of_profile_and_limit(limit, force, expected, finish) -> None:
    plan = plan_output(prompt=10, output_tokens=16, reasoning_tokens=0, limit=limit, force_limit=force,
                       cache_hit_ratio=0)
    assert (plan.content_tokens, plan.finish_reason) == (expected, finish)


def test_reasoning_counts_inside_completion_and_against_the_limit() -> None:
    plan = plan_output(prompt=10, output_tokens=16, reasoning_tokens=6, limit=10, force_limit=False,
                       cache_hit_ratio=0.25)
    assert (plan.reasoning_tokens, plan.content_tokens, plan.completion_tokens) == (6, 4, 10)
    assert plan.cached_tokens == 2  # floor(10 * 0.25)


def test_schedule_groups_tokens_per_chunk_without_mixing_kinds() -> None:
    profile = ModelProfile(ttft_ms=100, tpot_ms=10, tokens_per_chunk=3)
    plan = plan_output(prompt=1, output_tokens=5, reasoning_tokens=4, limit=None, force_limit=False,
                       cache_hit_ratio=0)
    schedule = build_schedule(plan, profile, None, reasoning_visible=True)
    assert [(p.kind, p.text) for p in schedule.pieces] == [
        ("reasoning", "think0 think1 think2"), ("reasoning", " think3"),
        ("content", "tok0 tok1 tok2"), ("content", " tok3 tok4")]
    # a chunk leaves when its last token is ready: ttft + index * tpot
    assert [round(p.ready_at, 3) for p in schedule.pieces] == [0.12, 0.13, 0.16, 0.18]
    assert schedule.done_at == pytest.approx(0.18)


def test_hidden_reasoning_still_takes_time() -> None:
    profile = ModelProfile(ttft_ms=100, tpot_ms=10)
    plan = plan_output(prompt=1, output_tokens=2, reasoning_tokens=3, limit=None, force_limit=False,
                       cache_hit_ratio=0)
    schedule = build_schedule(plan, profile, None, reasoning_visible=False)
    assert [p.text for p in schedule.pieces] == ["tok0", " tok1"]
    assert schedule.pieces[0].ready_at == pytest.approx(0.13)
    assert schedule.emitted_reasoning == 3


def test_stall_cut_and_filter_shape_the_schedule() -> None:
    profile = ModelProfile(tpot_ms=10, tokens_per_chunk=4)
    plan = plan_output(prompt=1, output_tokens=8, reasoning_tokens=0, limit=None, force_limit=False,
                       cache_hit_ratio=0)
    stalled = build_schedule(plan, profile, Fault(kind="stall", after_tokens=2, stall_s=1.0), reasoning_visible=True)
    assert [p.tokens for p in stalled.pieces] == [2, 4, 2]  # boundary forced at the stall
    assert stalled.pieces[1].ready_at - stalled.pieces[0].ready_at == pytest.approx(1.04)
    cut = build_schedule(plan, profile, Fault(kind="cut_stream", after_tokens=3), reasoning_visible=True)
    assert cut.cut and cut.emitted == 3
    filtered = build_schedule(plan, profile, Fault(kind="content_filter", after_tokens=2), reasoning_visible=True)
    assert filtered.finish_reason == "content_filter" and filtered.emitted == 2 and not filtered.cut


def test_fault_selectors_count_requests_of_the_model() -> None:
    rng = random.Random(0)
    every = [Fault(kind="rate_limit", every=3)]
    assert [pick_fault(every, n, rng) is not None for n in range(1, 7)] == [False, False, True, False, False, True]
    first = [Fault(kind="rate_limit", first=2)]
    assert [pick_fault(first, n, rng) is not None for n in range(1, 5)] == [True, True, False, False]
    after = [Fault(kind="rate_limit", after=2)]
    assert [pick_fault(after, n, rng) is not None for n in range(1, 5)] == [False, False, True, True]
    always = [Fault(kind="server_error"), Fault(kind="rate_limit")]
    assert pick_fault(always, 1, rng).kind == "server_error"  # first listed wins


def test_probability_is_reproducible_per_seed_and_model() -> None:
    faults = [Fault(kind="rate_limit", probability=0.3)]

    def draws(seed: int, model: str) -> list[bool]:
        rng = model_rng(seed, model)
        return [pick_fault(faults, n, rng) is not None for n in range(1, 201)]

    assert draws(7, "a") == draws(7, "a")
    assert draws(7, "a") != draws(8, "a")
    assert 40 <= sum(draws(7, "a")) <= 80  # ~30% of 200

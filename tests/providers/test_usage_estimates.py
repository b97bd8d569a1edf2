"""Which text an estimate counts, and that counting it piece by piece equals counting it joined."""

from __future__ import annotations

import pytest

from tollway.core.usage import Usage, estimate_tokens
from tollway.providers.estimates import TextTally, answer_text_tally, estimated_usage, tally_chunk_text


def tally_of(*chunks: dict) -> TextTally:
    tally = TextTally()
    for chunk in chunks:
        tally_chunk_text(tally, chunk)
    return tally


def counted(tally: TextTally) -> tuple[int, int]:
    return tally.ascii_chars, tally.other_chars


@pytest.mark.parametrize("pieces", [["abc", "de"], ["a"] * 9, ["你", "好", "abc"], ["", "x"], ["héllo wörld", "!"]])
def test_a_tally_of_pieces_is_the_estimate_of_their_join(pieces: list[str]) -> None:
    tally = TextTally()
    for piece in pieces:
        tally.add(piece)
    assert tally.tokens == estimate_tokens("".join(pieces))


def test_the_rule_counts_four_ascii_characters_a_token_rounded_up_and_each_other_character_as_one() -> None:
    tally = TextTally()
    tally.add("hello")  # 5 ASCII
    tally.add("世界")  # 2 other
    assert counted(tally) == (5, 2) and tally.tokens == 2 + 2


def test_chat_delta_text_content_reasoning_refusal_and_tool_arguments() -> None:
    chunk = {"choices": [{"index": 0, "delta": {
        "content": "ab", "refusal": "cd", "reasoning_content": "ef",
        "tool_calls": [{"index": 0, "function": {"name": "not_counted", "arguments": "gh"}},
                       {"index": 1, "function": {"arguments": "ij"}}],
        "function_call": {"name": "not_counted", "arguments": "kl"}}}]}
    assert counted(tally_of(chunk)) == (12, 0)


def test_one_reasoning_field_is_counted_when_a_server_sends_both_names() -> None:
    both = {"choices": [{"delta": {"reasoning_content": "think", "reasoning": "think"}}]}
    only_new = {"choices": [{"delta": {"reasoning": "think"}}]}
    empty_old = {"choices": [{"delta": {"reasoning_content": "", "reasoning": "think"}}]}
    assert counted(tally_of(both)) == counted(tally_of(only_new)) == counted(tally_of(empty_old)) == (5, 0)


def test_every_choice_and_completions_text_count() -> None:
    chunk = {"choices": [{"index": 0, "text": "one"}, {"index": 1, "delta": {"content": "two"}}]}
    assert counted(tally_of(chunk)) == (6, 0)


@pytest.mark.parametrize("chunk", [
    {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}},
    {"choices": [{"delta": {"role": "assistant", "content": None, "refusal": None}, "finish_reason": "stop"}]},
    {"error": {"message": "The stream was interrupted"}},
    {"type": "message_start", "message": {"content": [{"type": "text", "text": "not a delta"}]}},
    {"type": "content_block_start", "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}},
    {"choices": "odd"}, {"choices": [None, 3, {"delta": "odd"}]},
], ids=["usage", "role-and-finish", "error", "message-start", "block-start", "signature", "odd", "odd-choices"])
def test_chunks_without_completion_text_count_nothing(chunk: dict) -> None:
    assert counted(tally_of(chunk)) == (0, 0)


def test_anthropic_deltas_text_thinking_and_tool_input() -> None:
    deltas = [{"type": "text_delta", "text": "ab"}, {"type": "thinking_delta", "thinking": "想"},
              {"type": "input_json_delta", "partial_json": '{"a"'}]
    assert counted(tally_of(*({"type": "content_block_delta", "index": 0, "delta": d} for d in deltas))) == (6, 1)


def test_non_streamed_chat_answer() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "abcd", "reasoning_content": "ef",
                                     "tool_calls": [{"function": {"name": "f", "arguments": '{"x":1}'}}]}},
                        {"message": {"content": [{"type": "text", "text": "gh"}]}}],
            "usage": None}
    assert counted(answer_text_tally(body)) == (15, 0)


def test_non_streamed_completions_and_anthropic_answers() -> None:
    assert counted(answer_text_tally({"choices": [{"text": "abc"}, {"text": "de"}]})) == (5, 0)
    message = {"type": "message", "content": [{"type": "thinking", "thinking": "hm", "signature": "zz"},
                                              {"type": "text", "text": "好的"},
                                              {"type": "tool_use", "name": "f", "input": {"a": 1}}]}
    assert counted(answer_text_tally(message)) == (2 + len('{"a":1}'), 2)


@pytest.mark.parametrize("body", [None, [], "text", {"choices": None}, {"data": [{"embedding": [0.1]}]}])
def test_answers_without_text_count_nothing(body: object) -> None:
    assert counted(answer_text_tally(body)) == (0, 0)


def test_estimated_usage_counts_the_prompt_or_keeps_a_reported_one() -> None:
    tally = TextTally()
    tally.add("abcdefgh")
    assert estimated_usage("abcde", tally) == Usage(prompt_tokens=2, completion_tokens=2, source="estimated")
    reported = Usage(prompt_tokens=40, cached_tokens=10, completion_tokens=1)
    assert estimated_usage("ignored", tally, reported) == Usage(prompt_tokens=40, cached_tokens=10,
                                                                completion_tokens=2, source="estimated")

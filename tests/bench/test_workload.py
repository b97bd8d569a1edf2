"""Workloads are deterministic: request i depends only on (workload, seed, i)."""

from __future__ import annotations

import pytest

from tollway.bench.lengths import parse_length
from tollway.bench.workload import JsonlWorkload, SharedPrefixWorkload, SyntheticWorkload, WorkloadError


def synthetic(seed: int = 7) -> SyntheticWorkload:
    return SyntheticWorkload(parse_length("uniform:20,40", "i"), parse_length("uniform:5,9", "o"), seed)


def test_same_seed_same_requests_in_any_order():
    a, b = synthetic(), synthetic()
    forward = [a.request(i) for i in range(50)]
    backward = [b.request(i) for i in reversed(range(50))][::-1]
    assert forward == backward
    assert a.fingerprint() == b.fingerprint()


def test_other_seed_other_requests_and_fingerprint():
    assert synthetic(1).request(0) != synthetic(2).request(0)
    assert synthetic(1).fingerprint() != synthetic(2).fingerprint()


def test_synthetic_lengths_follow_the_distributions():
    workload = synthetic()
    for i in range(100):
        spec = workload.request(i)
        words = spec.messages[0]["content"].split()
        assert len(words) == spec.prompt_tokens_hint and 20 <= len(words) <= 40
        assert 5 <= spec.output_tokens <= 9


def test_shared_prefix_requests_share_one_of_the_prefixes():
    workload = SharedPrefixWorkload(100, 3, parse_length("10", "i"), parse_length("4", "o"), seed=1)
    specs = [workload.request(i) for i in range(60)]
    prefixes = {s.messages[0]["content"] for s in specs}
    assert len(prefixes) == 3
    assert all(len(p.split()) == 100 for p in prefixes)
    assert len({s.messages[1]["content"] for s in specs}) == 60
    assert {s.prefix_group for s in specs} == {0, 1, 2}


def test_jsonl_prompts_cycle_in_seeded_shuffles(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "one"}\n\n{"messages": [{"role": "user", "content": "two"}], "max_tokens": 9}\n'
                    '{"prompt": "three", "output_tokens": 3}\n')
    workload = JsonlWorkload(path, parse_length("5", "o"), seed=4)
    first_pass = [workload.request(i) for i in range(3)]
    second_pass = [workload.request(i) for i in range(3, 6)]
    contents = lambda specs: sorted(s.messages[-1]["content"] for s in specs)  # noqa: E731
    assert contents(first_pass) == contents(second_pass) == ["one", "three", "two"]
    outputs = {s.messages[-1]["content"]: s.output_tokens for s in first_pass}
    assert outputs == {"one": 5, "two": 9, "three": 3}
    assert JsonlWorkload(path, None, seed=4).request(0) == JsonlWorkload(path, None, seed=4).request(0)


@pytest.mark.parametrize("content,fragment", [
    ('{"prompt": "a"}\nnot json\n', "prompts.jsonl:2: not valid JSON"),
    ('[1, 2]\n', "prompts.jsonl:1: each line must be a JSON object"),
    ('{"text": "a"}\n', "needs a non-empty \"prompt\""),
    ('{"prompt": "a", "max_tokens": 0}\n', "\"max_tokens\" must be a positive integer"),
    ('{"messages": [{"content": "a"}]}\n', "needs \"role\" and \"content\""),
    ('\n\n', "no prompts found"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, content, fragment):
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    with pytest.raises(WorkloadError, match=fragment):
        JsonlWorkload(path, None, seed=0)


def test_missing_jsonl_file_is_named(tmp_path):
    with pytest.raises(WorkloadError, match="cannot read .*nope.jsonl"):
        JsonlWorkload(tmp_path / "nope.jsonl", None, seed=0)

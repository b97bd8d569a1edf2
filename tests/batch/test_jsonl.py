"""Reading an input file: lines are numbered as an editor numbers them, blank lines included."""

from __future__ import annotations

import orjson
import pytest

from tollway.batch.jsonl import line_request, parse_lines
from tollway.core.errors import GatewayError


def _line(custom_id: str, **body) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "chat", "messages": [{"role": "user", "content": "hi"}], **body}})


def test_blank_lines_are_skipped_but_keep_the_numbering():
    lines = parse_lines(_line("a") + b"\n\n" + _line("b") + b"\n", 10_000, 10)
    assert [(line.index, line.custom_id) for line in lines] == [(0, "a"), (2, "b")]
    with pytest.raises(GatewayError) as refused:
        parse_lines(_line("a") + b"\n\n" + _line("b", stream=True) + b"\n", 10_000, 10)
    assert refused.value.param == "line[3].body.stream"


def test_an_empty_file_is_refused():
    with pytest.raises(GatewayError) as refused:
        parse_lines(b"\n \n", 10_000, 10)
    assert (refused.value.status, refused.value.code) == (400, "empty_file")


def test_a_line_as_a_request_bounds_its_completion_for_the_hold():
    (line,) = parse_lines(_line("a", max_tokens=77) + b"\n", 10_000, 10)
    creq = line_request(line)
    assert (creq.endpoint, creq.max_tokens, creq.raw_size) == ("chat", 77, len(orjson.dumps(line.body)))

"""SSE framing: events split across reads, CRLF line ends, comments and multi-line data."""

from __future__ import annotations

from tollway.bench.sse_client import SseParser, has_generated_text


def test_events_split_across_reads_are_joined():
    parser = SseParser()
    assert parser.feed(b'data: {"a"') == []
    assert parser.feed(b': 1}\n') == []
    assert parser.feed(b'\ndata: [DONE]\n\n') == [("message", b'{"a": 1}'), ("message", b"[DONE]")]


def test_crlf_split_between_reads():
    parser = SseParser()
    assert parser.feed(b"data: x\r\n\r") == []
    assert parser.feed(b"\ndata: y\r\n\r\n") == [("message", b"x"), ("message", b"y")]


def test_comments_and_event_names_and_multiline_data():
    parser = SseParser()
    events = parser.feed(b": keep-alive\n\nevent: error\ndata: {\"error\":\ndata: 1}\n\ndata:nospace\n\n")
    assert events == [("error", b'{"error":\n1}'), ("message", b"nospace")]


def test_role_only_chunk_carries_no_generated_text():
    assert not has_generated_text({"delta": {"role": "assistant", "content": ""}})
    assert not has_generated_text({"delta": {}, "finish_reason": "stop"})
    assert has_generated_text({"delta": {"content": "hi"}})
    assert has_generated_text({"delta": {"reasoning_content": "hm"}})
    assert has_generated_text({"delta": {"reasoning": "hm"}})
    assert has_generated_text({"delta": {"tool_calls": [{"index": 0}]}})

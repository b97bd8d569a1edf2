"""Bad client bodies get a 400 naming the field; good ones are read once."""

import pytest

from tollway.core.errors import GatewayError
from tollway.core.request import parse_request, prompt_text


@pytest.mark.parametrize("raw, message, param", [
    (b"{not json", "Request body is not valid JSON", None),
    (b"[1, 2]", "Request body must be a JSON object.", None),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "'model' is required", "model"),
    (b'{"model": "m"}', "'messages' is required.", "messages"),
    (b'{"model": "m", "messages": []}', "'messages' must be a non-empty array.", "messages"),
    (b'{"model": "m", "messages": ["hi"]}', "messages[0] must be an object", "messages[0]"),
    (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0].role is required", "messages[0].role"),
    (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages[0].content must be", "messages[0].content"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}', "'max_tokens' must be a positive integer", "max_tokens"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "'temperature' must be a number", "temperature"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "'stream' must be true or false", "stream"),
])
def test_bad_chat_bodies(raw, message, param):
    with pytest.raises(GatewayError) as err:
        parse_request("chat", raw)
    assert err.value.status == 400
    assert message in err.value.message
    assert err.value.param == param


def test_embeddings_cannot_stream_and_need_input():
    with pytest.raises(GatewayError, match="cannot be streamed"):
        parse_request("embeddings", b'{"model": "e", "input": "x", "stream": true}')
    with pytest.raises(GatewayError, match="'input' is required"):
        parse_request("embeddings", b'{"model": "e"}')


def test_good_request_with_image_parts_and_usage_option():
    raw = (b'{"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": ['
           b'{"role": "user", "content": [{"type": "text", "text": "what is this"}, '
           b'{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}')
    request = parse_request("chat", raw)
    assert request.stream and request.client_wants_usage and request.model == "m"
    assert prompt_text(request) == "what is this"

"""The user and tags a request is attributed to: the bounds, exactly at and just past them."""

import pytest

from tollway.core.attribution import MAX_TAG_CHARS, MAX_TAGS, MAX_USER_CHARS, attribution
from tollway.core.errors import GatewayError


def test_tags_from_header_and_metadata_are_deduplicated_and_sorted() -> None:
    user, tags = attribution({"user": "u-1", "metadata": {"env": "prod", "run": "a:b"}}, " env:prod ,zeta,, alpha ")
    assert (user, tags) == ("u-1", '["alpha","env:prod","run:a:b","zeta"]')
    assert attribution({}, None) == ("", "[]")
    assert attribution({}, " , ") == ("", "[]")


def test_the_bounds_hold_exactly() -> None:
    at_most = ",".join(f"t{i}" for i in range(MAX_TAGS))
    assert len(attribution({}, at_most)[1].split(",")) == MAX_TAGS
    longest = "k:" + "v" * (MAX_TAG_CHARS - 2)
    assert longest in attribution({}, longest)[1]
    assert attribution({"user": "u" * MAX_USER_CHARS}, None)[0] == "u" * MAX_USER_CHARS
    for body, header, code in [({}, at_most + ",one-more", "too_many_tags"), ({}, longest + "v", "invalid_tags"),
                               ({"user": "u" * (MAX_USER_CHARS + 1)}, None, "invalid_user"),
                               ({}, "naïve", "invalid_tags"), ({}, ":value", "invalid_tags"),
                               ({"metadata": {"k": "has space"}}, None, "invalid_tags"),
                               ({"metadata": "env:prod"}, None, "invalid_tags")]:
        with pytest.raises(GatewayError) as refused:
            attribution(body, header)
        assert (refused.value.status, refused.value.code) == (400, code), (body, header)

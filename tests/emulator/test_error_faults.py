"""Injected error faults: each dialect's exact status and body, Retry-After, auth, and the selectors."""

from __future__ import annotations

import openai
import pytest

from tests.emulator.support import chat_body, post

OPENAI_LIKE = {"message", "type", "param", "code"}


def _fault(emulator, model: str = "m", **fault) -> None:
    emulator.set_profile(model, {"faults": [fault]})


def _call(emulator, dialect: str, model: str = "m", **extra):
    return post(f"{emulator.base_url(dialect)}/chat/completions", chat_body(model=model, **extra))


# (dialect, kind) -> (status, exact body) for the answers the facts give verbatim
EXACT = {
    ("openai", "insufficient_balance"): (429, {"error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}),
    ("deepseek", "insufficient_balance"): (402, {"error": {
        "message": "Insufficient Balance", "type": "unknown_error", "param": None, "code": "invalid_request_error"}}),
    ("glm", "insufficient_balance"): (429, {"error": {"code": "1113", "message": "您的账户已欠费，请充值后重试。"}}),
    ("glm", "content_filter"): (400, {"error": {"code": "1301", "message":
        "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"}}),
    ("kimi", "content_filter"): (400, {"error": {
        "type": "content_filter", "message": "The request was rejected because it was considered high risk"}}),
    ("ollama", "overloaded"): (503, {"error": {
        "message": "server busy, please try again.  maximum pending requests exceeded", "type": "api_error",
        "param": None, "code": None}}),
    ("llamacpp", "overloaded"): (503, {"error": {"code": 503, "message": "Loading model",
                                                 "type": "unavailable_error"}}),
}


@pytest.mark.parametrize("dialect, kind", sorted(EXACT))
def test_verified_error_bodies_are_exact(emulator, dialect: str, kind: str) -> None:
    _fault(emulator, kind=kind)
    reply = _call(emulator, dialect)
    assert (reply.status, reply.body) == EXACT[(dialect, kind)]


def test_qwen_bodies_carry_request_ids(emulator) -> None:
    _fault(emulator, kind="content_filter")
    reply = _call(emulator, "qwen")
    assert reply.status == 400
    assert reply.body["error"]["type"] == reply.body["error"]["code"] == "data_inspection_failed"
    assert reply.body["error"]["message"].startswith("Input data may contain inappropriate content.")
    assert reply.body["id"] == f"chatcmpl-{reply.body['request_id']}"
    _fault(emulator, kind="insufficient_balance")
    arrears = _call(emulator, "qwen")
    assert arrears.status == 400 and arrears.body["error"]["code"] == "Arrearage"
    assert arrears.body["error"]["message"] == "Access denied, please make sure your account is in good standing."
    _fault(emulator, kind="insufficient_balance", status=403)
    assert _call(emulator, "qwen").status == 403


@pytest.mark.parametrize("dialect, status, check", [
    ("openai", 429, lambda b: b["error"]["code"] == "rate_limit_exceeded" and set(b["error"]) == OPENAI_LIKE),
    ("deepseek", 429, lambda b: b["error"]["message"] == "Rate Limit Reached"),
    ("qwen", 429, lambda b: b["error"]["code"] == "Throttling.RateQuota" and "request_id" in b),
    ("kimi", 429, lambda b: set(b["error"]) == {"type", "message"}),
    ("glm", 429, lambda b: b["error"]["code"] == "1302"),
    ("vllm", 429, lambda b: b["error"]["code"] == 429),
    ("sglang", 429, lambda b: b["object"] == "error" and b["code"] == 429),
    ("lmdeploy", 429, lambda b: b["object"] == "error" and b["code"] == 429),
    ("llamacpp", 429, lambda b: b["error"]["code"] == 429),
    ("ollama", 429, lambda b: b["error"]["code"] is None),
])
def test_rate_limit_in_each_dialect_with_retry_after(emulator, dialect: str, status: int, check) -> None:
    _fault(emulator, kind="rate_limit", retry_after_s=3)
    reply = _call(emulator, dialect)
    assert reply.status == status and check(reply.body)
    assert reply.headers["retry-after"] == "3"


def test_rate_limit_headers_of_openai_and_kimi(emulator) -> None:
    ok = _call(emulator, "openai")
    assert int(ok.headers["x-ratelimit-remaining-requests"]) < int(ok.headers["x-ratelimit-limit-requests"])
    assert "x-request-id" in ok.headers
    _fault(emulator, kind="rate_limit", retry_after_s=0.5)
    limited = _call(emulator, "openai")
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.headers["x-ratelimit-reset-requests"] == "500ms"
    assert limited.headers["retry-after"] == "1"
    kimi = _call(emulator, "kimi")
    assert kimi.headers["x-ratelimit-remaining"] == "0"
    deepseek = _call(emulator, "deepseek")
    assert not any(h.startswith("x-ratelimit") for h in deepseek.headers)


@pytest.mark.parametrize("dialect, status", [("openai", 502), ("deepseek", 500), ("vllm", 503), ("sglang", 500),
                                             ("lmdeploy", 504), ("glm", 500), ("kimi", 502), ("qwen", 503)])
def test_server_error_status_is_configurable(emulator, dialect: str, status: int) -> None:
    _fault(emulator, kind="server_error", status=status)
    reply = _call(emulator, dialect)
    assert reply.status == status
    assert reply.body


def test_server_error_bodies(emulator) -> None:
    _fault(emulator, kind="server_error")
    assert _call(emulator, "openai").body["error"]["type"] == "server_error"
    sglang = _call(emulator, "sglang").body
    assert sglang["type"] == "InternalServerError" and sglang["message"].startswith("Internal server error: ")
    assert _call(emulator, "lmdeploy").body["type"] == "server_error"
    assert _call(emulator, "vllm").body["error"]["type"] == "InternalServerError"


@pytest.mark.parametrize("dialect, status", [("openai", 503), ("deepseek", 503), ("kimi", 429), ("glm", 429),
                                             ("vllm", 503), ("lmdeploy", 503)])
def test_overloaded(emulator, dialect: str, status: int) -> None:
    _fault(emulator, kind="overloaded")
    reply = _call(emulator, dialect)
    assert reply.status == status
    if dialect == "deepseek":
        assert reply.body["error"]["message"] == "Server Overloaded"
    if dialect == "glm":
        assert reply.body["error"]["code"] == "1312"


def test_kimi_insufficient_balance_is_403(emulator) -> None:
    _fault(emulator, kind="insufficient_balance")
    reply = _call(emulator, "kimi")
    assert reply.status == 403 and set(reply.body["error"]) == {"type", "message"}


def test_deepseek_content_filter(emulator) -> None:
    _fault(emulator, kind="content_filter")
    reply = _call(emulator, "deepseek")
    assert reply.status == 400 and reply.body["error"]["message"] == "Content Exists Risk"


def test_fault_message_override(emulator) -> None:
    _fault(emulator, kind="server_error", message="custom words")
    assert _call(emulator, "kimi").body["error"]["message"] == "custom words"


def test_sdk_sees_typed_errors(emulator) -> None:
    sdk = openai.OpenAI(base_url=emulator.base_url("openai"), api_key="k", max_retries=0)
    _fault(emulator, kind="rate_limit")
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    _fault(emulator, kind="server_error", status=503)
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


AUTH_BODIES = {
    "openai": lambda b: b["error"]["code"] == "invalid_api_key",
    "deepseek": lambda b: b["error"]["type"] == "authentication_error",
    "kimi": lambda b: b == {"error": {"type": "invalid_authentication_error", "message": "Invalid Authentication"}},
    "glm": lambda b: b["error"]["code"] == "1000",
    "vllm": lambda b: b == {"error": "Unauthorized"},
    "sglang": lambda b: b == {"error": "Unauthorized"},
    "lmdeploy": lambda b: b == {"message": "Unauthorized.", "type": "authentication_error", "code": 401,
                                "param": None, "object": "error"},
    "llamacpp": lambda b: b == {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}},
}


@pytest.mark.parametrize("dialect", sorted(AUTH_BODIES))
def test_api_key_mismatch_gets_the_dialect_401(emulator, dialect: str) -> None:
    emulator.set_profile("m", {"api_key": "sk-right"})
    wrong = post(f"{emulator.base_url(dialect)}/chat/completions", chat_body(),
                 {"Authorization": "Bearer sk-wrong"})
    assert wrong.status == 401 and AUTH_BODIES[dialect](wrong.body)
    assert "sk-wrong" not in str(wrong.body) and "sk-right" not in str(wrong.body)
    missing = post(f"{emulator.base_url(dialect)}/chat/completions", chat_body())
    assert missing.status == 401
    right = post(f"{emulator.base_url(dialect)}/chat/completions", chat_body(), {"Authorization": "Bearer sk-right"})
    assert right.status == 200


def test_selectors_every_first_after(emulator) -> None:
    _fault(emulator, "every", kind="server_error", every=3)
    assert [_call(emulator, "openai", "every").status for _ in range(6)] == [200, 200, 500, 200, 200, 500]
    _fault(emulator, "first", kind="rate_limit", first=2)
    assert [_call(emulator, "openai", "first").status for _ in range(4)] == [429, 429, 200, 200]
    _fault(emulator, "after", kind="overloaded", after=1)
    assert [_call(emulator, "openai", "after").status for _ in range(3)] == [200, 503, 503]


def test_probability_is_seeded_and_replays_after_reset(emulator_factory) -> None:
    config = {"seed": 42, "models": {"p": {"faults": [{"kind": "server_error", "probability": 0.5}]}}}
    emu = emulator_factory(config)
    first = [_call(emu, "openai", "p").status for _ in range(20)]
    emu.reset()
    again = [_call(emu, "openai", "p").status for _ in range(20)]
    assert first == again
    assert 3 <= first.count(500) <= 17


def test_faults_count_per_model_and_restart_on_profile_change(emulator) -> None:
    _fault(emulator, "a", kind="server_error", first=1)
    _fault(emulator, "b", kind="server_error", first=1)
    assert [_call(emulator, "openai", "a").status, _call(emulator, "openai", "b").status] == [500, 500]
    assert _call(emulator, "openai", "a").status == 200
    _fault(emulator, "a", kind="server_error", first=1)
    assert _call(emulator, "openai", "a").status == 500

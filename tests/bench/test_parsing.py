"""Flags and specs that users type: durations, SLOs, length distributions, targets."""

from __future__ import annotations

import random

import pytest

from tollway.bench.durations import DurationError, parse_duration
from tollway.bench.lengths import LengthError, parse_length
from tollway.bench.slo import Slo, SloError, meets_slo, parse_slo
from tollway.bench.targets import TargetError, check_unique, parse_target, redact_url


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("10s", 10.0), ("2m", 120.0), ("1.5s", 1.5),
                                          ("250us", 0.00025), ("1h", 3600.0)])
def test_durations_need_and_honour_a_unit(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["50", "fast", "10 parsecs", ""])
def test_duration_errors_name_the_option_and_value(text):
    with pytest.raises(DurationError, match="--timeout") as info:
        parse_duration(text, "--timeout")
    assert repr(text) in str(info.value)


def test_slo_parses_every_key():
    slo = parse_slo("ttft=500ms,tpot=50ms,e2e=10s,itl=200ms")
    assert slo == Slo(ttft_s=0.5, tpot_s=0.05, e2e_s=10.0, itl_s=0.2)
    assert slo.as_ms() == {"ttft": 500.0, "tpot": 50.0, "e2e": 10000.0, "itl": 200.0}
    assert parse_slo(None).is_empty


@pytest.mark.parametrize("text,fragment", [("ttft=500", "unit"), ("latency=5s", "KEY one of"),
                                           ("ttft=1s,ttft=2s", "twice"), ("ttft=0ms", "greater than zero")])
def test_slo_errors_say_what_is_wrong(text, fragment):
    with pytest.raises(SloError, match=fragment):
        parse_slo(text)


def test_failed_requests_never_meet_slos():
    assert not meets_slo(Slo(), ok=False, measured_s={})
    assert meets_slo(Slo(), ok=True, measured_s={})


def test_slo_judgement_per_metric():
    slo = Slo(ttft_s=0.5, tpot_s=0.05)
    assert meets_slo(slo, True, {"ttft": 0.4, "tpot": 0.05})
    assert not meets_slo(slo, True, {"ttft": 0.6, "tpot": 0.01})
    assert not meets_slo(slo, True, {"ttft": 0.1, "tpot": 0.051})
    # a TPOT the request could not report (no usage) is a miss, one that does not exist (1 token) is not
    assert not meets_slo(slo, True, {"ttft": 0.1, "tpot": None})
    assert meets_slo(slo, True, {"ttft": 0.1, "tpot": None}, frozenset({"tpot"}))


def test_length_distributions_sample_within_their_shape():
    rng = random.Random(1)
    assert parse_length("128", "--output-tokens").sample(rng) == 128
    uniform = parse_length("uniform:10,20", "--input-tokens")
    samples = [uniform.sample(rng) for _ in range(500)]
    assert min(samples) >= 10 and max(samples) <= 20 and len(set(samples)) == 11
    normal = parse_length("normal:100,10", "x")
    mean = sum(normal.sample(rng) for _ in range(2000)) / 2000
    assert 97 < mean < 103
    lognormal = parse_length("lognormal:100,0.5", "x")
    values = sorted(lognormal.sample(rng) for _ in range(2001))
    assert 90 < values[1000] < 110  # the median
    assert all(v >= 1 for v in values)


@pytest.mark.parametrize("text,fragment", [("zipf:1,2", "unknown kind"), ("uniform:5", "needs 2"),
                                           ("uniform:20,10", "MAX must not be below MIN"), ("0", "at least 1"),
                                           ("normal:a,b", "not a number"), ("12.5", "whole number")])
def test_length_errors_name_option_and_value(text, fragment):
    with pytest.raises(LengthError, match=fragment) as info:
        parse_length(text, "--input-tokens")
    assert "--input-tokens" in str(info.value)


def test_target_spec_with_options(monkeypatch):
    monkeypatch.setenv("PROVISIONED_KEY", "sk-secret")
    target = parse_target("ptu=https://user:pw@api.example.com/v1?key=abc,model=m2,key_env=PROVISIONED_KEY,exact=false",
                          default_model="m1")
    assert (target.name, target.model, target.exact_output) == ("ptu", "m2", False)
    assert target.api_key() == "sk-secret"
    assert target.chat_url.startswith("https://user:pw@api.example.com/v1")
    assert target.display_url == "https://api.example.com/v1"
    assert "pw" not in target.display_url and "abc" not in target.display_url
    assert parse_target("a=http://h:8000/v1", "m").chat_url == "http://h:8000/v1/chat/completions"


@pytest.mark.parametrize("text,fragment", [("http://h/v1", "NAME=URL"), ("a=ftp://h/v1", "not an http"),
                                           ("a=http://h/v1,colour=red", "colour=red"),
                                           ("a=http://h/v1,exact=maybe", "exact")])
def test_target_errors(text, fragment):
    with pytest.raises(TargetError, match=fragment):
        parse_target(text, "m")


def test_target_needs_a_model_and_a_unique_name():
    with pytest.raises(TargetError, match="no model"):
        parse_target("a=http://h/v1", None)
    with pytest.raises(TargetError, match="used twice"):
        check_unique([parse_target("a=http://h/v1", "m"), parse_target("a=http://g/v1", "m")])


def test_redact_url_keeps_host_port_and_path():
    assert redact_url("http://k:s@127.0.0.1:9000/x/v1?token=t#f") == "http://127.0.0.1:9000/x/v1"

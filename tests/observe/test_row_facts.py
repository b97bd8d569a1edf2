"""The shared definitions of error reason, fallback and hedge, on the attempt shapes the gateway records."""

from tests.observe.support import row
from tollway.observe.row_facts import error_reason, fell_back, hedged

TS = "2026-11-23T10:00:00+00:00"


def attempt(deployment: str, outcome: str, kind: str = "") -> dict:
    return {"deployment": deployment, "provider": deployment.split("-")[0], "outcome": outcome, "kind": kind}


def test_fallback_after_failure_or_skip_but_not_after_a_retry_or_a_hedge():
    assert fell_back(row("a", TS, deployment="qwen-plus", attempts=[attempt("ds-flash", "failover", "timeout"),
                                                                  attempt("qwen-plus", "ok")]))
    assert fell_back(row("b", TS, deployment="qwen-plus", attempts=[attempt("ds-flash", "skipped"),
                                                                  attempt("qwen-plus", "ok")]))
    assert not fell_back(row("c", TS, attempts=[attempt("ds-flash", "retry", "server_error"), attempt("ds-flash", "ok")]))
    hedge_won_by_partner = row("d", TS, deployment="qwen-plus", attempts=[
        attempt("ds-flash", "cancelled", "hedge_loser"), attempt("qwen-plus", "ok")])
    assert not fell_back(hedge_won_by_partner) and hedged(hedge_won_by_partner)
    assert not fell_back(row("e", TS, attempts=[attempt("router-x", "routing_overhead"), attempt("ds-flash", "ok")]))


def test_error_reasons():
    assert error_reason(row("ok", TS)) is None
    assert error_reason(row("a", TS, status="error", attempts=[attempt("ds-flash", "failover", "server_error"),
                                                                attempt("qwen-plus", "failover", "rate_limited")])) == "rate_limited"
    assert error_reason(row("b", TS, status="error", http_status=503,
                            attempts=[attempt("ds-flash", "skipped"), attempt("qwen-plus", "skipped")])) == "breaker_open"
    assert error_reason(row("c", TS, status="stream_error")) == "stream_interrupted"
    assert error_reason(row("d", TS, status="cancelled", http_status=499)) == "client_disconnected"
    assert error_reason(row("e", TS, status="client_error", http_status=404, deployment="", attempts=[])) == "http_404"

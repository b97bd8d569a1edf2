"""The client self-check weighs its own lateness against the figures it could distort."""

from tollway.bench.client_monitor import ClientLoad, load_warnings


def load(lag_p99: float = 0.1, delay_p50: float = 0.05, delay_p99: float = 0.1, cpu: float = 20.0) -> ClientLoad:
    return ClientLoad(loop_lag_p50_ms=lag_p99 / 2, loop_lag_p99_ms=lag_p99, loop_lag_max_ms=lag_p99, cpu_percent=cpu,
                      wall_s=10.0, send_delay_p50_ms=delay_p50, send_delay_p99_ms=delay_p99,
                      send_delay_max_ms=delay_p99)


def test_a_lag_under_the_fixed_threshold_is_flagged_when_it_is_a_visible_share_of_itl():
    # seen in the field: lag p99 4.9 ms against a 5 ms threshold while ITL read 8% high
    found = load_warnings(load(lag_p99=4.9), {"ttft": 400.0, "itl": 60.0, "e2e": 2000.0})
    assert any("8% of the median ITL" in w for w in found), found


def test_a_lag_that_is_a_visible_share_of_ttft_is_flagged():
    found = load_warnings(load(lag_p99=3.0), {"ttft": 100.0, "itl": None, "e2e": 900.0})
    assert any("3.0% of the median TTFT" in w for w in found), found


def test_send_delay_is_flagged_against_ttft_in_open_loop_and_e2e_in_closed_loop():
    medians = {"ttft": 400.0, "itl": 50.0, "e2e": 500.0}
    busy = load(delay_p50=6.1, delay_p99=14.7)
    (open_loop,) = load_warnings(busy, medians, open_loop=True)
    assert "p50/p99 6.10/14.70 ms" in open_loop and "TTFT and E2E include it" in open_loop
    (closed_loop,) = load_warnings(busy, medians, open_loop=False)
    assert "of the median E2E" in closed_loop and "offered load was lower" in closed_loop


def test_a_quiet_client_raises_nothing():
    assert load_warnings(load(), {"ttft": 400.0, "itl": 50.0, "e2e": 1000.0}) == []
    assert load_warnings(load(), None) == []

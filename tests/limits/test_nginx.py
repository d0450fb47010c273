"""The pure limit_req arithmetic, checked against nginx's C source by hand-computed cases."""

from __future__ import annotations

import pytest

from qaio.errors import ConfigError
from qaio.limits.nginx import (
    MILLI,
    NODELAY,
    LimitReq,
    Node,
    charge,
    check_cost,
    delay_ms,
    elapsed,
    idle_ms,
    retry_after_ms,
    step,
    to_ms,
)

FIVE = LimitReq.of("5r/s", burst=12, delay=8)  # seed 001's /login


def test_limit_req_is_in_nginx_units() -> None:
    assert LimitReq(rate=5000, burst=12000, delay=8000) == FIVE
    assert LimitReq.of("5r/m").rate == 83  # 5 * 1000 / 60, truncated like ctx->rate
    assert LimitReq.of(10, burst=3, nodelay=True).delay == NODELAY
    assert FIVE.max_cost == 13
    assert FIVE.quota.limit == 13 and FIVE.quota.rate == 5.0


def test_limit_req_rejects_ambiguous_or_negative_configs() -> None:
    with pytest.raises(ConfigError):
        LimitReq.of("1r/s", delay=2, nodelay=True)
    with pytest.raises(ConfigError):
        LimitReq.of("1r/s", burst=-1)
    with pytest.raises(ConfigError):
        LimitReq(rate=0)


def test_a_new_key_starts_empty_so_its_first_request_is_free() -> None:
    assert charge(None, 5000, now=123, cost=1) == (0, 123)
    assert charge(Node(0, None), 5000, now=123) == (0, 123)  # created by nginx but never charged
    assert charge(None, 5000, now=123, cost=3) == (2 * MILLI, 123)


def test_charge_leaks_rate_times_elapsed_then_adds_one_request() -> None:
    # excess = excess - rate * ms / 1000 + 1000
    assert charge(Node(2400, 420), 5000, now=600) == (2400 - 900 + 1000, 600)
    assert charge(Node(500, 0), 5000, now=10_000) == (0, 10_000)  # never below zero
    assert charge(Node(0, 0), 83, now=7) == (1000, 7)  # 83 * 7 / 1000 truncates to 0


def test_clock_running_back_is_clamped_like_nginx() -> None:
    assert elapsed(1000, 1010) == 0
    assert elapsed(0, 60_001) == 1
    assert elapsed(0, 60_000) == 0
    # no time passed: nginx charges but keeps `last`
    assert charge(Node(1000, 500), 5000, now=490) == (2000, 500)
    assert charge(Node(1000, 500), 5000, now=500) == (2000, 500)


def test_delay_is_the_excess_above_delay_drained_at_rate() -> None:
    assert delay_ms(8000, FIVE) == 0
    assert delay_ms(8250, FIVE) == 50
    assert delay_ms(9001, FIVE) == 200  # (9001 - 8000) * 1000 / 5000 = 200.2, truncated
    assert delay_ms(12000, LimitReq.of(5, burst=12, nodelay=True)) == 0
    assert delay_ms(1000, LimitReq.of(5, burst=12)) == 200  # no delay=: every excess waits


def test_step_rejects_above_burst_and_stores_nothing() -> None:
    node = Node(12000, 1000)
    rejected = step(node, FIVE, now=1100)
    assert not rejected.accepted
    assert rejected.excess == 12500 and rejected.node is node
    assert rejected.retry_after == 100  # 500 milli-requests above burst leak in 100 ms
    accepted = step(node, FIVE, now=1200)
    assert accepted.accepted and accepted.excess == 12000 and accepted.delay == 800
    assert accepted.node == Node(12000, 1200)


def test_retry_after_is_long_enough() -> None:
    limit = LimitReq.of("7r/s", burst=2)
    node = Node(2000, 0)
    first = step(node, limit, now=1)
    assert first.retry_after is not None and not first.accepted
    assert retry_after_ms(first.excess, limit) == first.retry_after
    assert step(node, limit, now=1 + first.retry_after).accepted
    assert not step(node, limit, now=first.retry_after).accepted


def test_step_decision_is_in_seconds_and_requests() -> None:
    decision = step(Node(8000, 0), FIVE, now=150).decision()
    assert decision.accepted and decision.excess == 8.25 and decision.delay == 0.05
    assert decision.retry_after is None


@pytest.mark.parametrize("excess", [0, 1, 999, 5000, 12000])
@pytest.mark.parametrize("rate", [1, 83, 5000, 10_000, 333_333])
def test_a_node_idle_for_idle_ms_is_worth_a_new_key(excess: int, rate: int) -> None:
    node = Node(excess, 0)
    ttl = idle_ms(excess, rate)
    assert charge(node, rate, now=ttl) == charge(None, rate, now=ttl)
    assert charge(node, rate, now=ttl - 1)[0] > 0


def test_cost_must_fit_in_an_empty_bucket() -> None:
    check_cost(13, FIVE)
    with pytest.raises(ValueError):
        check_cost(14, FIVE)
    with pytest.raises(ValueError):
        check_cost(0, FIVE)


def test_to_ms_survives_binary_floats() -> None:
    assert to_ms(4.35) == 4350
    assert to_ms(1.1) == 1100
    assert to_ms(0.0009) == 0

"""The per-process token bucket, on an injected clock."""

from __future__ import annotations

import pytest

from qaio.limits import Decision, TokenBucket


def test_starts_full_and_refuses_when_empty() -> None:
    bucket = TokenBucket(capacity=3, refill_per_second=2)
    assert [bucket.try_acquire(now=0).accepted for _ in range(4)] == [True, True, True, False]
    refused = bucket.try_acquire(now=0)
    assert refused == Decision(accepted=False, excess=3.0, retry_after=0.5)


def test_refills_at_its_rate_up_to_capacity() -> None:
    bucket = TokenBucket(capacity=4, refill_per_second=2)
    assert bucket.try_acquire(cost=4, now=10).accepted
    assert not bucket.try_acquire(cost=2, now=10.5).accepted  # one token back
    assert bucket.try_acquire(cost=2, now=11).accepted
    assert bucket.try_acquire(now=100).excess == 1.0  # refilled to 4, never beyond


def test_retry_after_is_exactly_long_enough() -> None:
    bucket = TokenBucket(capacity=2, refill_per_second=4)
    bucket.try_acquire(cost=2, now=0)
    refused = bucket.try_acquire(cost=2, now=0.125)
    assert refused.retry_after == pytest.approx(0.375)
    assert bucket.try_acquire(cost=2, now=0.5).accepted


def test_a_clock_running_back_refills_nothing() -> None:
    bucket = TokenBucket(capacity=1, refill_per_second=1)
    assert bucket.try_acquire(now=5).accepted
    assert not bucket.try_acquire(now=1).accepted
    assert bucket.try_acquire(now=6).accepted


def test_uses_its_clock_by_default() -> None:
    ticks = iter([0.0, 0.0, 1.0])
    bucket = TokenBucket(1, 1, clock=lambda: next(ticks))
    assert [bucket.try_acquire().accepted for _ in range(3)] == [True, False, True]
    assert bucket.quota.limit == 1


@pytest.mark.parametrize("cost", [0, -1, 3])
def test_impossible_costs_are_errors(cost: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(2, 1).try_acquire(cost=cost, now=0)


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        TokenBucket(1, 0)

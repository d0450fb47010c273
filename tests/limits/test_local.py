"""The in-process nginx zone limiter: the emulator's decisions, live, behind the Limiter protocol."""

from __future__ import annotations

from qaio.limits import Limiter, LocalLimiter, RequestLimiter

from .test_emulator import RESOURCES, SEED_TIMES, ZONES


async def test_local_limiter_decides_like_the_emulator() -> None:
    limiter = LocalLimiter("5r/s", burst=12, delay=8, size=1000)
    assert isinstance(limiter, Limiter)
    live = [await limiter.acquire("ip", now=t) for t in SEED_TIMES]
    assert live == RequestLimiter(ZONES, RESOURCES).replay([(t, "ip", "/login") for t in SEED_TIMES])


async def test_local_limiter_reads_its_clock_and_charges_cost() -> None:
    now = [100.0]
    limiter = LocalLimiter("10/s", burst=4, nodelay=True, clock=lambda: now[0])
    assert (await limiter.acquire("k", cost=3)).excess == 2.0  # a new key: the first request is free
    assert (await limiter.acquire("k", cost=2)).excess == 4.0
    refused = await limiter.acquire("k")
    assert not refused.accepted and refused.retry_after == 0.1
    now[0] += 0.1
    assert (await limiter.acquire("k")).accepted
    assert limiter.quota.limit == 5


def test_local_limiter_has_a_sync_twin() -> None:
    limiter = LocalLimiter(1, burst=1, delay=0)
    assert limiter.decide("k", now=0).delay == 0.0
    assert limiter.decide("k", now=0).delay == 1.0
    assert not limiter.decide("k", now=0).accepted


def test_local_limiter_keeps_at_most_size_keys_and_charges_the_empty_key() -> None:
    limiter = LocalLimiter("1r/s", size=2)
    for key in ("a", "b", "c"):
        limiter.decide(key, now=0)
    assert limiter.zone.keys() == ["b", "c"]
    assert limiter.decide("", now=0).accepted
    assert not limiter.decide("", now=0).accepted  # unlike nginx, "" is a key like any other

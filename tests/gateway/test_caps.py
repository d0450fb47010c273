"""Concurrency caps: slots are leases. LocalCap with an injected clock; RedisCap on the real Redis, shared
by clients, and freed after a gateway process is killed with -9 mid-request."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qaio.errors import ConfigError
from qaio.limits import CapToken, ConcurrencyCap, LocalCap, RedisCap
from tests.conftest import REDIS_HOST, REDIS_PORT

from .conftest import REDIS_DB


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_local_cap_counts_releases_and_expires() -> None:
    clock = Clock()
    cap = LocalCap(clock=clock)
    assert isinstance(cap, ConcurrencyCap)
    first = await cap.acquire("k", 2, lease=10)
    second = await cap.acquire("k", 2, lease=10)
    assert first.accepted and second.accepted and second.held == 2
    clock.now += 4
    third = await cap.acquire("k", 2, lease=10)
    assert not third.accepted and third.token is None
    assert third.held == 2 and third.retry_after == pytest.approx(6)  # when the first lease runs out
    assert (await cap.acquire("other", 2, lease=10)).accepted  # keys are independent
    assert first.token is not None and second.token is not None
    assert await cap.release(first.token)
    assert not await cap.release(first.token)  # once only
    assert (await cap.acquire("k", 2, lease=10)).accepted
    assert cap.held("k") == 2
    clock.now += 6.5  # second's lease (and nobody renewed it) ran out: a "crashed" holder
    assert cap.held("k") == 1
    assert not await cap.extend(second.token, 10)  # an expired slot is not revived
    assert not await cap.release(second.token)


async def test_local_cap_extend_keeps_a_slot() -> None:
    clock = Clock()
    cap = LocalCap(clock=clock)
    slot = await cap.acquire("k", 1, lease=1)
    assert slot.token is not None
    for _ in range(5):
        clock.now += 0.9
        assert await cap.extend(slot.token, 1)
    assert not (await cap.acquire("k", 1, lease=1)).accepted
    clock.now += 1.01
    assert (await cap.acquire("k", 1, lease=1)).accepted


async def test_cap_arguments_are_checked() -> None:
    cap = LocalCap()
    with pytest.raises(ConfigError):
        await cap.acquire("k", -1, lease=1)
    with pytest.raises(ConfigError):
        await cap.acquire("k", 1, lease=0)
    assert not (await cap.acquire("k", 0, lease=1)).accepted  # a cap of 0 is closed


# -- Redis --


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    yield client
    await client.aclose()


async def test_redis_cap_counts_releases_and_expires(redis: Any, redis_prefix: str) -> None:
    cap = RedisCap(redis, prefix=redis_prefix)
    assert isinstance(cap, ConcurrencyCap)
    first = await cap.acquire("k", 2, lease=5)
    second = await cap.acquire("k", 2, lease=0.2)
    assert first.accepted and second.accepted and second.held == 2
    third = await cap.acquire("k", 2, lease=5)
    assert not third.accepted and third.held == 2
    assert third.retry_after is not None and 0 < third.retry_after <= 0.2  # the short lease goes first
    assert await cap.held("k") == 2
    await asyncio.sleep(0.25)  # second's holder "crashed": its lease ran out
    assert await cap.held("k") == 1
    assert second.token is not None and not await cap.extend(second.token, 5)
    assert (await cap.acquire("k", 2, lease=5)).accepted
    assert first.token is not None and await cap.release(first.token)
    assert not await cap.release(first.token)
    ttl = await redis.pttl(cap.key("k"))
    assert 0 < ttl <= 5000  # the key itself vanishes once its last lease has run out


async def test_redis_cap_extend(redis: Any, redis_prefix: str) -> None:
    cap = RedisCap(redis, prefix=redis_prefix)
    slot = await cap.acquire("k", 1, lease=0.3)
    assert slot.token is not None
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await cap.extend(slot.token, 0.3)
    assert not (await cap.acquire("k", 1, lease=1)).accepted
    assert await redis.pttl(cap.key("k")) > 0
    assert not await cap.extend(CapToken("k", "not-a-token"), 1)


async def test_redis_cap_is_exact_under_concurrency_from_two_clients(redis: Any, redis_prefix: str) -> None:
    import redis.asyncio as aioredis

    other = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        caps = [RedisCap(redis, prefix=redis_prefix), RedisCap(other, prefix=redis_prefix)]
        decisions = await asyncio.gather(*(caps[i % 2].acquire("k", 10, lease=5) for i in range(60)))
        assert sum(d.accepted for d in decisions) == 10
        held = [d.token for d in decisions if d.token is not None]
        assert all(await asyncio.gather(*(caps[1].release(token) for token in held)))
        assert await caps[0].held("k") == 0
    finally:
        await other.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_gateway_killed_mid_request_frees_its_slot_when_the_lease_runs_out(redis: Any, redis_prefix: str) -> None:
    """A real gateway process (uvicorn) on Redis takes a slot for a request that waits (no worker), and
    is killed with -9: the slot stays taken until its lease runs out, then the cap is whole again."""
    port = _free_port()
    env = {
        **os.environ,
        "QAIO_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={redis_prefix}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    command = [sys.executable, "-m", "uvicorn", "tests.gateway.crash_gateway:api", "--port", str(port)]
    command += ["--log-level", "warning"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cap = RedisCap(redis, prefix=f"{redis_prefix}:cap")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    await client.get("/health")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read() if server.stderr else ""
                    assert time.monotonic() < deadline, "the gateway did not start"
                    await asyncio.sleep(0.05)
            waiting = asyncio.create_task(client.get("/wait", timeout=10))
            while await cap.held("gw.hello") < 1:
                await asyncio.sleep(0.01)
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            with pytest.raises(httpx.TransportError):
                await waiting
        assert await cap.held("gw.hello") == 1  # nobody released it...
        assert not (await cap.acquire("gw.hello", 1, lease=1)).accepted
        await asyncio.sleep(1.1)  # ...but the lease (1 s) ran out
        assert await cap.held("gw.hello") == 0
        assert (await cap.acquire("gw.hello", 1, lease=1)).accepted
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

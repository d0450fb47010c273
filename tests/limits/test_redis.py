"""The Redis limiter: the Lua script is nginx.py's `step`, on the server's clock, shared by all clients.

Runs against the Redis at 127.0.0.1:6379 without flushing it: each test has its own key prefix and
deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qaio.errors import ConfigError
from qaio.limits import Decision
from qaio.limits.nginx import Node, idle_ms, step, to_ms
from qaio.limits.redis import RedisLimiter

from .servers import unavailable

HOST, PORT = "127.0.0.1", 6379


async def connect() -> Any:
    """A client of the shared Redis; skips loudly (fails under CI=true) when there is none."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        unavailable("redis-py is not installed (pip install 'qaio[redis]')")
    try:  # a plain socket first: redis-py would retry a refused connection with backoff for seconds
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError as error:
        unavailable(f"Redis is not reachable at {HOST}:{PORT}: {error}")
    client = aioredis.Redis(host=HOST, port=PORT, socket_connect_timeout=1)
    await client.ping()
    return client


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = await connect()
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Any) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSHDB: Redis is shared)."""
    name = f"qaio-test:limits:{uuid.uuid4().hex}"
    yield name
    keys = [key async for key in redis.scan_iter(match=f"{name}:*")]
    if keys:
        await redis.delete(*keys)


LIMITS: dict[str, dict[str, Any]] = {
    "seed_001": {"rate": "5r/s", "burst": 12, "delay": 8},
    "nodelay": {"rate": "3r/s", "burst": 4, "nodelay": True},
    "no_burst": {"rate": "2r/s"},
    "per_minute": {"rate": "7r/m", "burst": 2, "delay": 1},
}


@pytest.mark.parametrize("name", LIMITS)
async def test_lua_performs_nginx_step_exactly(redis: Any, prefix: str, name: str) -> None:
    """With the clock passed in, every decision equals the pure arithmetic's, to the milli-request."""
    config = LIMITS[name]
    limiter = RedisLimiter(redis, prefix=f"{prefix}:{name}", **config)
    limit = limiter.limit
    rng = random.Random(name)
    nodes: dict[str, Node | None] = {}
    now = 1_000_000  # ms
    for _ in range(150):
        # mostly forward, sometimes a clock stepping back a little (clamped to 0) or a lot (clamped to 1)
        now += rng.choice([0, 1, 7, 20, 50, 130, 400, 1000, -30, -70_000])
        key = rng.choice(["a", "b"])
        cost = rng.choice([1, 1, 1, 2]) if limit.max_cost >= 2 else 1
        expected = step(nodes.get(key), limit, now, cost)
        nodes[key] = expected.node
        got = await limiter.acquire(key, cost=cost, now=now / 1000)
        assert got == expected.decision(), (now, key, cost)


async def test_live_decisions_follow_the_server_clock(redis: Any, prefix: str) -> None:
    """On Redis TIME, the decisions match the arithmetic replayed at the client's measured times."""
    limiter = RedisLimiter(redis, prefix=prefix, rate="10r/s", burst=6, delay=2)
    plan = [0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.18, 0.21, 0.24, 0.27, 0.4, 0.42, 0.44, 0.47, 1.0, 1.02]
    start = time.monotonic() + 0.01
    measured: list[float] = []
    live: list[Decision] = []
    for at in plan:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        before = time.monotonic()
        live.append(await limiter.acquire("client"))
        measured.append((before + time.monotonic()) / 2 - start)
    node: Node | None = None
    expected = []
    for t in measured:
        outcome = step(node, limiter.limit, to_ms(t))
        node = outcome.node
        expected.append(outcome.decision())
    assert [d.accepted for d in live] == [d.accepted for d in expected]
    assert any(not d.accepted for d in live) and any(d.delay > 0.2 for d in live)
    for got, want in zip(live, expected, strict=True):
        assert got.delay == pytest.approx(want.delay, abs=0.015)
        assert got.excess == pytest.approx(want.excess, abs=0.15)


async def test_two_clients_share_one_budget(redis: Any, prefix: str) -> None:
    other = await connect()
    try:
        one = RedisLimiter(redis, prefix=prefix, rate="1r/m", burst=9, nodelay=True)
        two = RedisLimiter(other, prefix=prefix, rate="1r/m", burst=9, nodelay=True)
        decisions = await asyncio.gather(*[(one, two)[i % 2].acquire("shared") for i in range(40)])
    finally:
        await other.aclose()
    assert sum(d.accepted for d in decisions) == 10  # burst + 1, however the calls interleave
    # the fills 0..9, less what leaked at 1 r/m while the calls ran
    assert sorted(d.excess for d in decisions if d.accepted) == pytest.approx(list(range(10)), abs=0.05)
    assert all(d.retry_after and d.retry_after > 50 for d in decisions if not d.accepted)


async def test_idle_keys_expire_once_worth_nothing(redis: Any, prefix: str) -> None:
    limiter = RedisLimiter(redis, prefix=prefix, rate="10r/s", burst=2, nodelay=True)
    for _ in range(3):
        assert (await limiter.acquire("idle")).accepted
    assert not (await limiter.acquire("idle")).accepted  # rejections write nothing
    ttl = await redis.pttl(limiter.key("idle"))
    assert idle_ms(2000, 10_000) - 50 < ttl <= idle_ms(2000, 10_000)  # 300 ms: 2 requests + 1, at 10 r/s
    await asyncio.sleep(ttl / 1000 + 0.05)
    assert not await redis.exists(limiter.key("idle"))
    assert (await limiter.acquire("idle")).excess == 0.0  # back as a new key


async def test_keys_stay_under_the_prefix(redis: Any, prefix: str) -> None:
    limiter = RedisLimiter(redis, prefix=prefix, rate=1)
    await limiter.acquire("a")
    await limiter.acquire("b")
    keys = sorted([key.decode() async for key in redis.scan_iter(match=f"{prefix}:*")])
    assert keys == [f"{prefix}:a", f"{prefix}:b"]
    state = await redis.hgetall(f"{prefix}:a")
    seconds, micros = await redis.time()
    assert state[b"e"] == b"0"  # a new key's first request is free
    assert 0 <= seconds * 1000 + micros // 1000 - int(state[b"l"]) < 1000  # stamped by the server clock


def test_a_prefix_is_required() -> None:
    with pytest.raises(ConfigError):
        RedisLimiter(object(), prefix="", rate=1)  # type: ignore[arg-type]


def test_importing_qaio_limits_needs_no_redis() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import qaio.limits, qaio.limits.redis\n"
        "from qaio.limits import RedisLimiter, RequestLimiter\n"
        "assert RedisLimiter.__module__ == 'qaio.limits.redis'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr

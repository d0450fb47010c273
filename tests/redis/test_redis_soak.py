"""Bounded memory: after 20,000 jobs and their result TTL, Redis holds what it held before.

Nothing grows per processed job: job hashes and id-index entries expire with the result TTL, and
the done/dead indexes are trimmed by the scripts. Runs on a private server, so the numbers are ours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import redis
from redis_servers import RedisServer

from qaio import App, Worker

JOBS = 20_000
TTL = 2.0


async def noop(i: int) -> None:
    return None


async def drain(app: App, count: int) -> None:
    task = app.tasks.get("noop") or app.task(name="noop")(noop)
    for start in range(0, count, 2000):
        await task.aenqueue_many([{"i": i} for i in range(start, min(start + 2000, count))])
    stats = await Worker(app, burst=True, concurrency=64).run()
    assert stats.succeeded == count


async def settle_down(app: App, raw: redis.Redis, keys_at_most: int) -> None:
    """Wait out the result TTL, then until Redis has expired the keys (reap trims the indexes)."""
    await asyncio.sleep(TTL + 0.2)
    deadline = time.monotonic() + 30
    while True:
        await (await app.backend()).reap()
        if raw.dbsize() <= keys_at_most or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


async def test_memory_returns_to_its_start_after_results_expire(server_factory: Callable[..., RedisServer]) -> None:
    server = server_factory()
    raw = redis.Redis(port=server.port)
    app = App(server.url, result_ttl=TTL, lease=5.0)
    await drain(app, 200)  # warm up: scripts cached, queue keys made
    await settle_down(app, raw, keys_at_most=20)
    keys_before, memory_before = raw.dbsize(), raw.info("memory")["used_memory"]

    start = time.perf_counter()
    await drain(app, JOBS)
    elapsed = time.perf_counter() - start
    peak = raw.info("memory")["used_memory"]
    await settle_down(app, raw, keys_at_most=keys_before)
    keys_after, memory_after = raw.dbsize(), raw.info("memory")["used_memory"]
    print(
        f"\nsoak: {JOBS} jobs in {elapsed:.1f} s; used_memory {memory_before:,} -> peak {peak:,} -> {memory_after:,};"
        f" keys {keys_before} -> {keys_after}"
    )
    assert keys_after <= keys_before
    assert memory_after - memory_before < 512 * 1024, (memory_before, memory_after)
    await app.aclose()
    raw.close()

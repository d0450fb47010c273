"""The coalescer: concurrent calls share a round trip, errors reach every caller, cancelled callers are
left out (or undone); and a burst through the gateway admits exactly the cap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from qaio.gateway.batching import Coalescer
from qaio.limits import RedisCap
from tests.conftest import REDIS_HOST, REDIS_PORT

from .conftest import REDIS_DB


async def turns(n: int = 5) -> None:
    """Let the event loop run a few rounds of ready callbacks."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_idle_calls_go_at_once_and_busy_ones_batch() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await gate.wait()
        return [item * 10 for item in items]

    coalesce: Coalescer[int, int] = Coalescer(run)
    first = asyncio.create_task(coalesce(1))
    await turns()
    assert batches == [[1]]  # sent alone, at once
    rest = [asyncio.create_task(coalesce(i)) for i in range(2, 6)]
    await turns()
    gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50]
    assert batches == [[1], [2, 3, 4, 5]]  # what piled up meanwhile went as one batch


async def test_an_error_reaches_every_caller_of_its_batch() -> None:
    async def run(items: Sequence[int]) -> list[int]:
        raise RuntimeError("down")

    coalesce: Coalescer[int, int] = Coalescer(run)
    results = await asyncio.gather(*(coalesce(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert not coalesce._busy  # and it keeps working afterwards


async def test_cancelled_callers_are_left_out_or_undone() -> None:
    sent: list[list[int]] = []
    undone: list[int] = []
    gate = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int]:
        sent.append(list(items))
        await gate.wait()
        return list(items)

    async def undo(result: int) -> None:
        undone.append(result)

    coalesce: Coalescer[int, int] = Coalescer(run, orphan=undo)
    in_flight = asyncio.create_task(coalesce(1))
    await turns()
    waiting = asyncio.create_task(coalesce(2))
    kept = asyncio.create_task(coalesce(3))
    await turns()
    in_flight.cancel()  # cancelled while its batch is in flight: its result is undone
    waiting.cancel()  # cancelled before its batch went out: never sent
    await turns()
    gate.set()
    assert await kept == 3
    assert sent == [[1], [3]] and undone == [1]


@pytest.fixture
async def redis(redis_prefix: str) -> Any:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    yield client
    await client.aclose()


async def test_redis_cap_grants_a_batch_in_order(redis: Any, redis_prefix: str) -> None:
    cap = RedisCap(redis, prefix=redis_prefix)
    decisions = await cap.acquire_many("k", 3, 5.0, 5)
    assert [d.accepted for d in decisions] == [True, True, True, False, False]
    assert all(d.held == 3 for d in decisions)
    assert decisions[4].retry_after is not None and 4.5 < decisions[4].retry_after <= 5.0
    tokens = [d.token.token for d in decisions if d.token is not None]
    assert await cap.release_many("k", [*tokens, "unknown"]) == [True, True, True, False]
    assert await cap.held("k") == 0

"""fastapi-queue driver. Its public producer API is the gateway's DistributedTaskApplyManager, whose
rclt() queues a request and waits for its answer (the round trip row). It has no enqueue-only call, so
the enqueue rows and the backlog use _publish_query, the step of rclt() that queues (RPUSH + PUBLISH
in one pipeline), on a fresh manager per job as the gateway makes one per request.

The worker (QueueWorker, one process, 16 coroutines) wakes only on a PUBLISH to channel:query and
then drains the list; a backlog queued while it was down gets no such message, so the worker
subcommand publishes one wake-up per coroutine once it has subscribed. It runs with run_startup=False
because startup empties the queue; the route's capacity token, which startup would set, is set by
the producers.
"""

from __future__ import annotations

import asyncio
import logging

import aioredis
from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from fastapi_queue import DistributedTaskApplyManager, QueueWorker

VIA = "DistributedTaskApplyManager.rclt (pub/sub)"
ROUTE = "/noop"
COROUTINES = 16

_quiet = logging.getLogger("fastapi_queue")
_quiet.setLevel(logging.WARNING)


async def async_noop(redis: aioredis.Redis, mysql: None) -> None:
    """The benchmark's no-op handler (the 'async_' prefix is how fastapi-queue spots coroutines)."""
    mark_done()


async def setup() -> aioredis.Redis:
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.set(f"routelimit:{ROUTE}", 1_000_000)
    return redis


async def enqueue(redis: aioredis.Redis) -> None:
    await DistributedTaskApplyManager(redis=redis, request_path=ROUTE)._publish_query({}, 0)


async def roundtrip(redis: aioredis.Redis) -> None:
    async with DistributedTaskApplyManager(
        redis=redis, request_path=ROUTE, confirm_timeout=int(RESULT_TIMEOUT_S), process_timeout=int(RESULT_TIMEOUT_S)
    ) as manager:
        if not manager.success():
            raise RuntimeError("route capacity exhausted")
        ok, result = await manager.rclt(form_data={}, task_level=0)
    if not ok:
        raise RuntimeError(f"request failed: {result}")


async def _wake(redis: aioredis.Redis) -> None:
    while (await redis.pubsub_numsub("channel:query"))[0][1] < 1:
        await asyncio.sleep(0.01)
    for _ in range(COROUTINES):
        await redis.publish("channel:query", b"0")


async def worker() -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    queue_worker = QueueWorker(
        redis,
        threads=COROUTINES,
        route_table_maximum_concurrency={ROUTE: 1_000_000},
        allowed_type_limit=None,
        run_startup=False,
        logger=_quiet,
    )
    queue_worker.method_register(ROUTE, async_noop)
    wake = asyncio.create_task(_wake(redis))
    await queue_worker.run_serve()
    await wake

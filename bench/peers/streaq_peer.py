"""streaQ driver: AsyncRegisteredTask.enqueue, Worker.enqueue_many (pipelined), Task.result (pub/sub).

The worker runs through ``Worker.run_sync()`` rather than ``streaq run``, because the CLI configures
INFO logging, two lines per task, and other peers run with per-job logging off.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from streaq import Worker
from streaq.task import AsyncRegisteredTask

VIA = "Task.result (pub/sub)"

app = Worker(redis_url=REDIS_URL, queue_name="bench", concurrency=100)


@app.task
async def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


async def setup() -> AsyncRegisteredTask:
    """Producers enqueue inside the worker's async context, as streaQ's docs do."""
    await AsyncExitStack().enter_async_context(app)
    return noop


async def enqueue(task: AsyncRegisteredTask) -> None:
    await task.enqueue()


async def enqueue_many(task: AsyncRegisteredTask, n: int) -> None:
    await app.enqueue_many([task.enqueue() for _ in range(n)])


async def roundtrip(task: AsyncRegisteredTask) -> None:
    result = await (await task.enqueue()).result(timeout=RESULT_TIMEOUT_S)
    if not result.success:
        raise RuntimeError(f"task failed: {result}")


def worker() -> None:
    logging.basicConfig(level=logging.WARNING)
    app.run_sync()

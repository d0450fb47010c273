"""ArdiQ driver: Task.enqueue, Ardiq.enqueue_many (one round trip per batch), Job.result(timeout=...)."""

from __future__ import annotations

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from ardiq import Ardiq
from ardiq.tasks import Task

VIA = "Job.result(timeout=...) (core's await_result)"

app = Ardiq(redis_url=REDIS_URL, queue_name="bench")


@app.task
async def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


async def setup() -> Task:
    await app.queue_size()
    return noop


async def enqueue(task: Task) -> None:
    await task.enqueue()


async def enqueue_many(task: Task, n: int) -> None:
    await app.enqueue_many([task.prepare() for _ in range(n)])


async def roundtrip(task: Task) -> None:
    result = await (await task.enqueue()).result(timeout=RESULT_TIMEOUT_S)
    if result is None or not result.success:
        raise RuntimeError(f"task failed: {result}")

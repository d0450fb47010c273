"""taskiq driver, two rows: taskiq-redis ListQueueBroker (BENCH_VARIANT=list) or RedisStreamBroker
(stream), each with RedisAsyncResultBackend; AsyncTaskiqDecoratedTask.kiq, TaskiqTask.wait_result."""

from __future__ import annotations

from _common import REDIS_URL, RESULT_TIMEOUT_S, VARIANT, mark_done
from taskiq import AsyncTaskiqDecoratedTask
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend, RedisStreamBroker

VIA = "TaskiqTask.wait_result(check_interval=0.001) (polls the result backend)"

_broker_class = RedisStreamBroker if VARIANT == "stream" else ListQueueBroker
broker = _broker_class(REDIS_URL, queue_name="bench").with_result_backend(RedisAsyncResultBackend(REDIS_URL))


@broker.task
async def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


async def setup() -> AsyncTaskiqDecoratedTask:
    """startup() also creates the stream's consumer group, so a backlog queued now is delivered."""
    await broker.startup()
    return noop


async def enqueue(task: AsyncTaskiqDecoratedTask) -> None:
    await task.kiq()


async def roundtrip(task: AsyncTaskiqDecoratedTask) -> None:
    sent = await task.kiq()
    result = await sent.wait_result(check_interval=0.001, timeout=RESULT_TIMEOUT_S)
    result.raise_for_error()

"""RQ driver: Queue.enqueue / Queue.enqueue_many, results through Job.latest_result (blocking XREAD)."""

from __future__ import annotations

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from redis import Redis
from rq import Queue

QUEUE = "bench"
VIA = "Job.latest_result (blocking XREAD)"


def noop() -> None:
    """The benchmark's no-op job."""
    mark_done()


def setup() -> Queue:
    connection = Redis.from_url(REDIS_URL)
    connection.ping()
    return Queue(QUEUE, connection=connection)


def enqueue(queue: Queue) -> None:
    queue.enqueue(noop)


def enqueue_many(queue: Queue, n: int) -> None:
    queue.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])


def roundtrip(queue: Queue) -> None:
    result = queue.enqueue(noop).latest_result(timeout=int(RESULT_TIMEOUT_S))
    if result is None or result.type != result.Type.SUCCESSFUL:
        raise RuntimeError(f"no successful result: {result}")

"""SAQ driver: Queue.enqueue, Queue.apply (enqueue and poll for the result); worker via `saq` CLI."""

from __future__ import annotations

from typing import Any

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from saq import Queue

VIA = "Queue.apply(poll_interval=0.001) (polls the job)"

queue = Queue.from_url(REDIS_URL, name="bench")


async def noop(ctx: dict[str, Any]) -> None:
    """The benchmark's no-op job."""
    mark_done()


settings = {"queue": queue, "functions": [noop], "concurrency": 10}


async def setup() -> Queue:
    await queue.connect()
    return queue


async def enqueue(q: Queue) -> None:
    await q.enqueue("noop")


async def roundtrip(q: Queue) -> None:
    """Queue.apply polls. Job.refresh(until_complete=...) waits on pub/sub instead, but it reads the
    status before it subscribes, can miss a job finishing in between and then waits out its timeout
    (one of its round trips timed out in a full run here)."""
    await q.apply("noop", timeout=RESULT_TIMEOUT_S, poll_interval=0.001)

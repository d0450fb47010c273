"""BullMQ (Python port) driver: Queue.add / Queue.addBulk; results through QueueEvents' per-job
'completed:<id>' event (its XREAD stream); the Worker runs through the API (the port has no CLI)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from bullmq import Job, Queue, QueueEvents, Worker

VIA = "QueueEvents 'completed:<jobId>' event (XREAD on the events stream)"
QUEUE = "bench"
CONNECTION = {"connection": REDIS_URL}


async def noop(job: Job, token: str) -> None:
    """The benchmark's no-op processor."""
    mark_done()


@dataclass
class Producer:
    """What the hooks share: the queue, and a QueueEvents listener once round trips start."""

    queue: Queue
    events: QueueEvents | None = None


async def setup() -> Producer:
    queue = Queue(QUEUE, CONNECTION)
    await queue.client.ping()
    return Producer(queue)


async def enqueue(producer: Producer) -> None:
    await producer.queue.add("noop", {})


async def enqueue_many(producer: Producer, n: int) -> None:
    await producer.queue.addBulk([{"name": "noop", "data": {}} for _ in range(n)])


async def roundtrip(producer: Producer) -> None:
    """Listen for the job's own completion event first, then add it under an id chosen here."""
    if producer.events is None:
        producer.events = QueueEvents(QUEUE, CONNECTION)
        await asyncio.sleep(0.2)  # let its XREAD start before the first job is added
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_completed(*_: Any) -> None:
        if not finished.done():
            finished.set_result(None)

    job_id = uuid.uuid4().hex
    producer.events.on(f"completed:{job_id}", on_completed)
    try:
        await producer.queue.add("noop", {}, {"jobId": job_id})
        await asyncio.wait_for(finished, RESULT_TIMEOUT_S)
    finally:
        producer.events.off(f"completed:{job_id}", on_completed)


async def worker() -> None:
    Worker(QUEUE, noop, {**CONNECTION, "concurrency": 100})
    await asyncio.Event().wait()

"""Celery driver: redis broker and result backend; Task.delay, AsyncResult.get (pub/sub)."""

from __future__ import annotations

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from celery import Celery, Task

VIA = "AsyncResult.get (redis backend, pub/sub)"

app = Celery("celery_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)


@app.task
def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


def setup() -> Task:
    with app.connection_for_write() as connection:
        connection.ensure_connection()
    return noop


def enqueue(task: Task) -> None:
    task.delay()


def roundtrip(task: Task) -> None:
    task.delay().get(timeout=RESULT_TIMEOUT_S)

"""Huey driver. BENCH_VARIANT picks the storage: ``sqlite`` (SqliteHuey, its defaults: WAL,
synchronous=OFF), ``file`` (FileHuey) or ``memory`` (MemoryHuey, consumer threads in this process).

The out-of-process worker is ``huey_consumer huey_driver.huey`` (see the registry for its flags).
Result.get(blocking=True) polls storage; max_delay=1 ms makes that poll every millisecond (its
first sleep is min(50 ms, max_delay)), the lowest latency its public API offers.
"""

from __future__ import annotations

import os

from _common import DATA_DIR, RESULT_TIMEOUT_S, VARIANT, mark_done
from huey import FileHuey, MemoryHuey, SqliteHuey
from huey.api import Huey, TaskWrapper
from huey.consumer import Consumer

VIA = "Result.get(blocking=True, max_delay=1 ms): polls the storage every 1 ms"

huey: Huey
if VARIANT == "memory":
    huey = MemoryHuey("bench", store_none=True)
elif VARIANT == "file":
    huey = FileHuey("bench", path=os.path.join(DATA_DIR, "huey-files"), store_none=True)
else:
    huey = SqliteHuey("bench", filename=os.path.join(DATA_DIR, "huey.db"), store_none=True)

_consumer: Consumer | None = None


@huey.task()
def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


def setup() -> TaskWrapper:
    return noop


def enqueue(task: TaskWrapper) -> None:
    task()


def roundtrip(task: TaskWrapper) -> None:
    task().get(blocking=True, timeout=RESULT_TIMEOUT_S, max_delay=0.001)


def clear(task: TaskWrapper) -> None:
    huey.flush()


def start_consumer(task: TaskWrapper) -> None:
    """MemoryHuey: the real Consumer (its worker and scheduler threads) started inside this process,
    with the same flags the CLI consumer gets for the other variants."""
    global _consumer
    _consumer = huey.create_consumer(
        workers=int(os.environ.get("BENCH_HUEY_WORKERS", "1")),
        worker_type="thread",
        initial_delay=0.001,
        backoff=2.0,
        max_delay=0.05,
        periodic=False,
    )
    _consumer.start()

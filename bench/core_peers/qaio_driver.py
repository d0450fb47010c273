"""qaio on sqlite:// driven like the peers: producer and ``qaio worker`` in separate processes, the
no-op task appending one byte, so its row is measured exactly as theirs are (core.py's rows run the
worker in the producer's process, where a write wakes the result waiter at once)."""

from __future__ import annotations

import os

from _common import DATA_DIR, RESULT_TIMEOUT_S, mark_done

from qaio import App
from qaio.task import Task

VIA = "Job.aresult(): polls the job row, 1 ms backing off to 50 ms"

app = App(f"sqlite:///{os.path.join(DATA_DIR, 'qaio.db')}", result_ttl=600)


@app.task(name="noop")
async def noop(i: int) -> None:
    """The benchmark's no-op task."""
    mark_done()


async def setup() -> Task:
    return noop  # type: ignore[return-value]


async def enqueue(task: Task) -> None:
    await task.aenqueue(i=0)


async def enqueue_many(task: Task, n: int) -> None:
    await task.aenqueue_many([{"i": i} for i in range(n)])


async def roundtrip(task: Task) -> None:
    job = await task.aenqueue(i=0)
    await job.aresult(timeout=RESULT_TIMEOUT_S)

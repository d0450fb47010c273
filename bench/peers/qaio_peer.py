"""qaio driver: the subject of the benchmark, through its public API only.

The no-op task is `async def` (qaio runs coroutines on the worker's loop, sync functions in a thread
pool); the worker is qaio's own CLI, one process, concurrency 64. One-call enqueue is the blocking
Task.enqueue (faster than aenqueue one at a time: no event loop between the caller and its socket),
bulk enqueue is aenqueue_many. Round trips wait with Job.aresult, whose result is pushed to this
process over one pub/sub listener.
"""

from __future__ import annotations

from _common import REDIS_URL, mark_done

from qaio import App

VIA = "Job.aresult (pushed over pub/sub)"

app = App(REDIS_URL, result_ttl=120)


@app.task(name="noop")
async def noop() -> None:
    mark_done()


async def setup() -> App:
    await app.backend()
    return app


def enqueue(ctx: App) -> None:
    noop.enqueue()  # blocking: from the caller's thread over a blocking socket, as sync producers do


async def enqueue_many(ctx: App, n: int) -> None:
    await noop.aenqueue_many([{}] * n)


async def roundtrip(ctx: App) -> None:
    job = await noop.aenqueue()
    await job.aresult(timeout=10)

"""Redis dies and comes back: producers and workers reconnect with backoff and lose nothing it kept.

The server runs with the append-only file (fsync always), so everything acknowledged survives the
SIGKILL; the jobs leased at the time are settled after the reconnect (or reaped when their lease
ran out), and a producer that enqueues while the server is down waits for it instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis_servers import RedisServer

from qaio import App, JobStatus, Worker


async def test_producer_and_worker_survive_a_restart(server_factory: Callable[..., RedisServer]) -> None:
    server = server_factory(persistent=True)
    app = App(server.url, lease=2.0, result_ttl=300)
    ran: set[int] = set()

    @app.task(name="step")
    async def step(i: int) -> int:
        await asyncio.sleep(0.002)
        ran.add(i)
        return i

    before = await step.aenqueue_many([{"i": i} for i in range(400)])
    worker = Worker(app, concurrency=8)
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 20
    while len(ran) < 50:
        assert time.monotonic() < deadline, "the worker did not start"
        await asyncio.sleep(0.01)

    server.kill()  # mid-drain: jobs are leased, settlements are in flight
    late = asyncio.create_task(step.aenqueue_many([{"i": i} for i in range(400, 500)]))
    one = asyncio.create_task(step.aenqueue(i=500))  # one job: the two plain commands, through the pool
    await asyncio.sleep(1.0)
    assert not late.done() and not one.done()  # the producer is waiting for Redis, not failing
    server.start()
    after = [*await asyncio.wait_for(late, 30), await asyncio.wait_for(one, 30)]

    backend = await app.backend()
    for job in before + after:
        final = await backend.wait_state(job.id, timeout=60)
        assert final is not None and final.status is JobStatus.SUCCEEDED, (job.id, final)
    assert ran == set(range(501))
    worker.stop()
    await asyncio.wait_for(running, 30)
    await app.aclose()

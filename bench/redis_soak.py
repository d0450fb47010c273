"""Redis soak: 1,000,000 jobs through one worker, and Redis's memory before, at peak and after.

Reproduce:  .venv/bin/python bench/redis_soak.py [--jobs 1000000]

It starts a private redis-server on a free loopback port (so the memory figures are qaio's alone),
records `used_memory`, enqueues the jobs in bulk batches while one worker (in this process, concurrency 64)
drains them, samples memory as it goes, and then waits for the results' TTL (5 s here) to run out.
Bounded memory means: after expiry, `used_memory` is back near its start and no key is left per job.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time

import redis.asyncio as aioredis
from _procs import free_port

from qaio import App, Worker


async def main(url: str, jobs: int, batch: int) -> None:
    probe = aioredis.Redis.from_url(url)
    while True:
        try:
            await probe.ping()
            break
        except aioredis.ConnectionError:
            await asyncio.sleep(0.05)
    before = (await probe.info("memory"))["used_memory"]
    app = App(url, result_ttl=5)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    worker = Worker(app, concurrency=64)
    running = asyncio.create_task(worker.run())
    peak, started = before, time.perf_counter()
    for offset in range(0, jobs, batch):
        await noop.aenqueue_many([{}] * min(batch, jobs - offset))
        if offset % (batch * 50) == 0:
            peak = max(peak, (await probe.info("memory"))["used_memory"])
            while worker.stats.processed < offset - 200_000:  # keep the backlog bounded
                await asyncio.sleep(0.05)
    while worker.stats.processed < jobs:
        peak = max(peak, (await probe.info("memory"))["used_memory"])
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    # Past the result TTL and one reap interval (lease / 2), with the worker alive: its reaps trim the
    # finished-job indexes (8 s flat missed the last reap on a slow run, leaving the done index).
    await asyncio.sleep(app.result_ttl + app.lease / 2 + 1)
    worker.stop()
    await running
    await app.aclose()
    after = (await probe.info("memory"))["used_memory"]
    keys = sorted(k.decode() for k in await probe.keys("*"))  # a private server: a handful of keys
    await probe.aclose()
    print(f"jobs {jobs:,} in {elapsed:.1f} s ({jobs / elapsed:,.0f}/s, enqueue and drain overlapping)")
    print(
        f"used_memory before {before:,} B, peak {peak:,} B, after expiry {after:,} B "
        f"({after - before:+,} B); keys left: {', '.join(keys)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tempfile.mkdtemp(prefix="qaio-soak-"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        asyncio.run(main(f"redis://127.0.0.1:{port}/0", args.jobs, args.batch))
    finally:
        server.terminate()
        server.wait(10)

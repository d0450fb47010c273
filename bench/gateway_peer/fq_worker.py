"""fastapi-queue 0.1.1's own example worker (its README), for bench/gateway.py: one process (its example
forks four) with `--threads` consumer coroutines, the same three handlers and the same route caps
(except /sync-test's, from $FQ_PRIME_CAP), plus a worker-side count of how many sync_prime_number calls
ran at once, written to $FQ_PEAK_FILE on SIGTERM. Redis from $FQ_REDIS_URL; fastapi_queue installs uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import aioredis
from fastapi_queue import QueueWorker

WORK = float(os.environ.get("QAIO_EXAMPLE_WORK", "0.2"))
lock = threading.Lock()
counts = {"running": 0, "peak": 0, "calls": 0}


async def async_root(*args: Any) -> str:
    return "Hello world."


def sync_prime_number(redis: Any, mysql: Any, x: int) -> bool:
    with lock:
        counts["running"] += 1
        counts["calls"] += 1
        counts["peak"] = max(counts["peak"], counts["running"])
    try:
        if x < 2:
            return False
        for numerator in range(2, math.isqrt(x) + 1):
            if x % numerator == 0:
                return False
        time.sleep(WORK)
        return True
    finally:
        with lock:
            counts["running"] -= 1


async def async_fibonacci(redis: Any, mysql: Any, n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    await asyncio.sleep(WORK)
    return a


async def main(threads: int) -> None:
    redis = aioredis.Redis.from_url(os.environ["FQ_REDIS_URL"])
    logger = logging.getLogger("fastapi_queue")
    logger.setLevel(logging.WARNING)
    worker = QueueWorker(
        redis,
        threads=threads,
        route_table_maximum_concurrency={
            "/": 9999,
            "/sync-test": int(os.environ.get("FQ_PRIME_CAP", "320")),
            "/async-test": 1000,
        },
        allowed_type_limit=None,
        run_startup=True,
        logger=logger,
    )
    for route, fn in {"/": async_root, "/sync-test": sync_prime_number, "/async-test": async_fibonacci}.items():
        worker.method_register(route, fn)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.graceful_shutdown, sig, None)
    await worker.run_serve()
    await redis.close()
    if peak_file := os.environ.get("FQ_PEAK_FILE"):
        Path(peak_file).write_text(f"{counts['peak']} {counts['calls']}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=16)
    asyncio.run(main(parser.parse_args().threads))

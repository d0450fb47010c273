"""The worker side of the gateway example: a qaio App and its tasks, after fastapi-queue's classic example.

Run workers with `qaio worker examples.gateway.tasks:app` (from the repository root). Levels keep heavy
work off light nodes: `--max-level 3` takes hello and prime_check but never fibonacci (level 7).
The broker is the embedded SQLite file by default; set QAIO_URL (e.g. redis://127.0.0.1:6379/0) for Redis.
"""

from __future__ import annotations

import asyncio
import math
import os
import time

from qaio import App, report_progress

app = App(
    os.environ.get("QAIO_URL", "sqlite:///qaio-gateway.db"), result_ttl=float(os.environ.get("QAIO_RESULT_TTL", 3600))
)

#: Seconds of simulated work in prime_check and fibonacci, as in fastapi-queue's example (0.2 s).
WORK = float(os.environ.get("QAIO_EXAMPLE_WORK", "0.2"))


@app.task
async def hello() -> str:
    """A trivial async task: what a request-reply round trip costs by itself."""
    return "Hello world."


@app.task(level=3, timeout=5)
def prime_check(x: int) -> bool:
    """A sync task (it runs in the worker's thread pool): is x a prime number?"""
    if x < 2:
        return False
    for divisor in range(2, math.isqrt(x) + 1):
        if x % divisor == 0:
            return False
    time.sleep(WORK)  # simulated slow work
    return True


@app.task(level=7, timeout=10)
async def fibonacci(n: int) -> int:
    """An async task at level 7 (heavy nodes only) that reports its progress: the n-th Fibonacci number."""
    a, b = 0, 1
    for i in range(n):
        a, b = b, a + b
        if i % 20 == 19:
            report_progress((i + 1) / n, f"{i + 1} of {n}")
            await asyncio.sleep(WORK / 4)
    await asyncio.sleep(WORK / 4)
    return a

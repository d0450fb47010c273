"""Plumbing shared by the drivers in bench/core_peers, so that every system is timed the same way.

A driver is one module, ``bench/core_peers/<driver>.py``, run by its peer's venv python as
``python bench/core_peers/drive.py <driver> SUBCOMMAND [N ...]`` (through drive.py, so the task
functions live in an importable module and not in ``__main__``, where a worker could not find them).
It defines the no-op task, whose whole body is ``mark_done()``, and these module-level names:

``setup()``               build what the calls below need (not timed); returns a context.
``enqueue(ctx)``          enqueue one no-op job through the peer's one-call public API.
``enqueue_many(ctx, n)``  optional: enqueue n jobs through the peer's bulk public API.
``roundtrip(ctx)``        optional: enqueue one job and block on the peer's own result API.
``worker()``              optional: run a worker in this process until killed (peers whose worker
                          starts through an API rather than a CLI).
``start_consumer(ctx)``   in-process peers only: start the consumer threads inside this process.
``clear(ctx)``            in-process peers only: empty the queue (after the one-call enqueue phase).
``VIA``                   how ``roundtrip`` learns the result, for the report.

Hooks may be ``async def``. Each subcommand writes one JSON line ``{"bench": {...}}`` straight to
fd 1 (some peers patch ``print``):

``enqueue-one N``     ``{"jobs": N, "seconds": s}``: N sequential ``enqueue`` calls after one untimed one.
``fill N``            ``{"jobs": N, "seconds": s, "bulk": bool}``: N jobs into the empty queue through
                      ``enqueue_many`` in batches of 1,000 when the driver has it, else N ``enqueue`` calls.
``roundtrip N``       ``{"samples_ms": [...], "via": str}``: up to N round trips (stops after
                      BENCH_RT_SECONDS), after one untimed warm-up.
``worker``            runs ``worker()``; prints nothing.
``inproc ONE N RT``   in-process peers: enqueue-one ONE, clear, fill N (a line each), start the
                      consumer in this process, wait for a line on stdin (the orchestrator sends it once
                      it has seen N bytes), then roundtrip RT (a line).

Environment: BENCH_DATA_DIR (where the broker keeps its files), BENCH_DONE_FILE (one byte appended per
finished job), BENCH_VARIANT (lets one driver serve several rows), BENCH_RT_SECONDS.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

DATA_DIR = os.environ.get("BENCH_DATA_DIR", ".")
DONE_FILE = os.environ.get("BENCH_DONE_FILE", os.devnull)
VARIANT = os.environ.get("BENCH_VARIANT", "")
RT_SECONDS = float(os.environ.get("BENCH_RT_SECONDS", "8"))
BULK_BATCH = 1000
RESULT_TIMEOUT_S = 10.0  # a round trip slower than this is a failure, not a sample

_done_fd: int | None = None


def mark_done() -> None:
    """The whole no-op task: one unsynced byte, so completion costs every peer the same syscall."""
    global _done_fd
    if _done_fd is None:
        _done_fd = os.open(DONE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_done_fd, b".")


def _emit(payload: dict[str, Any]) -> None:
    """Write one JSON result line past any print() patching a peer may have installed."""
    os.write(1, (json.dumps({"bench": payload}) + "\n").encode())


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a hook that may be a coroutine function (run on the driver's one event loop)."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = _loop().run_until_complete(result)
    return result


_LOOP: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP


def enqueue_one(driver: ModuleType, ctx: Any, n: int) -> dict[str, Any]:
    """n sequential one-call enqueues, after one untimed warm-up call."""
    _call(driver.enqueue, ctx)
    start = time.perf_counter()
    for _ in range(n):
        _call(driver.enqueue, ctx)
    return {"jobs": n, "seconds": time.perf_counter() - start}


def fill(driver: ModuleType, ctx: Any, n: int) -> dict[str, Any]:
    """n jobs into the queue, in bulk batches of 1,000 when the driver has a bulk API."""
    many = getattr(driver, "enqueue_many", None)
    start = time.perf_counter()
    if many is None:
        for _ in range(n):
            _call(driver.enqueue, ctx)
    else:
        for done in range(0, n, BULK_BATCH):
            _call(many, ctx, min(BULK_BATCH, n - done))
    return {"jobs": n, "seconds": time.perf_counter() - start, "bulk": many is not None}


def roundtrip(driver: ModuleType, ctx: Any, n: int) -> dict[str, Any]:
    """Up to n sequential round trips (at most BENCH_RT_SECONDS of them), after one warm-up."""
    _call(driver.roundtrip, ctx)
    samples: list[float] = []
    deadline = time.perf_counter() + RT_SECONDS
    while len(samples) < n and time.perf_counter() < deadline:
        start = time.perf_counter()
        _call(driver.roundtrip, ctx)
        samples.append((time.perf_counter() - start) * 1000)
    return {"samples_ms": samples, "via": driver.VIA}


def main(driver_name: str, argv: list[str]) -> None:
    """Import the driver, run one subcommand, print its JSON line(s) and exit at once (``os._exit``
    skips interpreter teardown, where some peers' background threads hang; the numbers are out)."""
    driver = importlib.import_module(driver_name)
    command, numbers = argv[0], [int(arg) for arg in argv[1:]]
    if command == "worker":
        _call(driver.worker)
        os._exit(0)
    ctx = _call(driver.setup)
    if command == "enqueue-one":
        _emit(enqueue_one(driver, ctx, numbers[0]))
    elif command == "fill":
        _emit(fill(driver, ctx, numbers[0]))
    elif command == "roundtrip":
        _emit(roundtrip(driver, ctx, numbers[0]))
    elif command == "inproc":
        _emit(enqueue_one(driver, ctx, numbers[0]))
        _call(driver.clear, ctx)
        _emit(fill(driver, ctx, numbers[1]))
        _call(driver.start_consumer, ctx)
        sys.stdin.readline()
        _emit(roundtrip(driver, ctx, numbers[2]))
    else:
        raise SystemExit(f"unknown subcommand {command!r}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

"""Plumbing shared by every driver in bench/peers, so that all systems are timed the same way.

A driver is one module, ``bench/peers/<driver>.py``, run by its peer's venv python as
``python bench/peers/drive.py <driver> SUBCOMMAND [N]`` (through drive.py, so the task functions live
in an importable module and not in ``__main__``, where workers could not find them). It defines the
no-op task, whose body is ``mark_done()``, and these module-level names; ``main()`` here owns the
loops and the clocks:

``setup()``             connect and build what the calls below need; not timed. Returns a context.
``enqueue(ctx)``        enqueue one no-op job through the peer's one-call public API.
``enqueue_many(ctx, n)`` optional: enqueue n jobs through the peer's bulk public API.
``roundtrip(ctx)``      enqueue one job and block until the peer's own result API returns its result.
``worker()``            optional: run a worker in this process until killed, for peers whose worker
                        is started through an API rather than a CLI (the registry says which).
``VIA``                 how ``roundtrip`` learns the result, for the report.

Any of the hooks may be ``async def``. Subcommands and the JSON line each one prints on stdout
(one line, ``{"bench": {...}}``, written straight to fd 1 because some peers patch ``print``):

``enqueue-one N``  ``{"jobs": N, "seconds": s}``: N sequential ``enqueue`` calls after one untimed
                   warm-up call.
``fill N``         ``{"jobs": N, "seconds": s, "bulk": bool}``: N jobs into the empty queue, through
                   ``enqueue_many`` in batches of BENCH_BULK_BATCH when the driver has it (then the
                   time is the bulk enqueue rate), else through N ``enqueue`` calls.
``roundtrip N``    ``{"samples_ms": [...], "via": str}``: up to N sequential round trips, stopping
                   early after BENCH_RT_SECONDS, after one untimed warm-up round trip.
``worker``         runs ``worker()``; prints nothing.

Environment: BENCH_REDIS_URL (db 9), BENCH_DONE_FILE (one byte appended per finished job),
BENCH_VARIANT (lets one driver serve several rows), BENCH_BULK_BATCH, BENCH_RT_SECONDS.
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
from typing import Any

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
REDIS_DB = int(REDIS_URL.rsplit("/", 1)[1])
DONE_FILE = os.environ.get("BENCH_DONE_FILE", os.devnull)
VARIANT = os.environ.get("BENCH_VARIANT", "")
BULK_BATCH = int(os.environ.get("BENCH_BULK_BATCH", "1000"))
RT_SECONDS = float(os.environ.get("BENCH_RT_SECONDS", "8"))
RESULT_TIMEOUT_S = 10.0  # a round trip that takes longer than this is a failure, not a sample

_done_fd: int | None = None


def mark_done() -> None:
    """The whole no-op task: one unsynced byte, so completion costs every peer the same syscall."""
    global _done_fd
    if _done_fd is None:
        _done_fd = os.open(DONE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_done_fd, b".")


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a driver hook that may or may not be a coroutine function."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _emit(payload: dict[str, Any]) -> None:
    """Write the one JSON result line past any print() patching a peer may have installed."""
    os.write(1, (json.dumps({"bench": payload}) + "\n").encode())


async def _measure(
    command: str,
    n: int,
    setup: Callable[[], Any],
    enqueue: Callable[[Any], Any],
    roundtrip: Callable[[Any], Any],
    enqueue_many: Callable[[Any, int], Any] | None,
    via: str,
) -> dict[str, Any]:
    ctx = await _call(setup)
    if command == "enqueue-one":
        await _call(enqueue, ctx)
        start = time.perf_counter()
        for _ in range(n):
            await _call(enqueue, ctx)
        return {"jobs": n, "seconds": time.perf_counter() - start}
    if command == "fill":
        start = time.perf_counter()
        if enqueue_many is None:
            for _ in range(n):
                await _call(enqueue, ctx)
        else:
            for done in range(0, n, BULK_BATCH):
                await _call(enqueue_many, ctx, min(BULK_BATCH, n - done))
        return {"jobs": n, "seconds": time.perf_counter() - start, "bulk": enqueue_many is not None}
    if command == "roundtrip":
        await _call(roundtrip, ctx)
        samples: list[float] = []
        deadline = time.perf_counter() + RT_SECONDS
        while len(samples) < n and time.perf_counter() < deadline:
            start = time.perf_counter()
            await _call(roundtrip, ctx)
            samples.append((time.perf_counter() - start) * 1000)
        return {"samples_ms": samples, "via": via}
    raise SystemExit(f"unknown subcommand {command!r}")


def main(driver_name: str, argv: list[str]) -> None:
    """Import the driver, run one subcommand, print its JSON line and exit at once.

    The hard exit skips interpreter teardown, where some peers' background threads or unclosed
    connections hang or complain; the measurement is already out by then.
    """
    driver = importlib.import_module(driver_name)
    command = argv[0] if argv else ""
    if command == "worker":
        worker = getattr(driver, "worker", None)
        if worker is None:
            raise SystemExit(f"{driver_name} starts its worker through the peer's CLI (see the registry)")
        result = worker()
        if inspect.isawaitable(result):
            asyncio.run(result)
        return
    payload = asyncio.run(
        _measure(
            command,
            int(argv[1]),
            driver.setup,
            driver.enqueue,
            driver.roundtrip,
            getattr(driver, "enqueue_many", None),
            driver.VIA,
        )
    )
    _emit(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

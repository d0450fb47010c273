"""qaio's worker for bench/gateway.py: what `qaio worker examples.gateway.tasks:app` runs, on uvloop (as
fastapi-queue's worker is), plus a worker-side count of how many prime_check calls ran at once.

    python bench/gateway_peer/qaio_worker.py --concurrency 64      # cwd: the repository root

On SIGTERM it finishes in-flight jobs and writes the peak to $QAIO_PEAK_FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, os.getcwd())

from examples.gateway import tasks
from qaio import Worker


class Peak:
    """Counts calls of a sync function running at once, across the worker's threads."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(**kwargs: Any) -> Any:
            with self._lock:
                self.running += 1
                self.calls += 1
                self.peak = max(self.peak, self.running)
            try:
                return fn(**kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return counted


async def main(concurrency: int, peak_file: str | None) -> None:
    peak = Peak()
    tasks.prime_check.fn = peak.wrap(tasks.prime_check.fn)
    worker = Worker(tasks.app, concurrency=concurrency, grace=5.0)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()
    await tasks.app.aclose()
    if peak_file:
        Path(peak_file).write_text(f"{peak.peak} {peak.calls}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    uvloop.run(main(args.concurrency, os.environ.get("QAIO_PEAK_FILE")))

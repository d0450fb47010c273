"""Tasks for the real-process tests; the broker URL comes from QAIO_TEST_URL."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from qaio import App, report_progress

app = App(os.environ.get("QAIO_TEST_URL", "memory://"), lease=1.0)


@app.task
async def sleepy(seconds: float, marker: str) -> int:
    """Notes each start (pid) in `marker`, then sleeps; the first start sleeps `seconds`, later ones briefly."""
    path = Path(marker)
    starts = path.read_text().split() if path.exists() else []
    with path.open("a") as out:
        out.write(f"{os.getpid()}\n")
    await asyncio.sleep(seconds if not starts else 0.05)
    return os.getpid()


@app.task
def stuck(seconds: float, marker: str) -> None:
    """A sync task (in the thread pool) that notes its start, then blocks as a read without a timeout would."""
    with Path(marker).open("a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(seconds)


@app.task(cpu_bound=True, timeout=1.0)
def spin(seconds: float) -> int:
    """Burns CPU in the process pool; past its timeout the child is killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    report_progress(1.0, "spun")
    return os.getpid()


@app.task
async def loop_module() -> str:
    """The module of the loop the worker runs on: 'uvloop' or 'asyncio.unix_events'."""
    return type(asyncio.get_running_loop()).__module__

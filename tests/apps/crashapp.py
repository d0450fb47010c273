"""Tasks for the real-process tests; the broker URL comes from QAIO_TEST_URL."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from qaio import App, report_progress

app = App(os.environ.get("QAIO_TEST_URL", "memory://"), lease=1.0)


def note_start(marker: str, seconds: float) -> float:
    """Notes this start (pid) in `marker`; the first start is to last `seconds`, later ones briefly."""
    path = Path(marker)
    first = not path.exists()
    with path.open("a") as out:
        out.write(f"{os.getpid()}\n")
    return seconds if first else 0.05


@app.task
async def sleepy(seconds: float, marker: str) -> int:
    """Notes each start, then sleeps: the first start `seconds`, later ones briefly."""
    await asyncio.sleep(note_start(marker, seconds))
    return os.getpid()


@app.task
def stuck(seconds: float, marker: str) -> int:
    """sleepy's sync twin, in the thread pool: it blocks as a read without a timeout would, and a thread
    cannot be stopped."""
    time.sleep(note_start(marker, seconds))
    return os.getpid()


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

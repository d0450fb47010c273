"""The demo's tasks: an image resize with progress, emails, a flaky call, a doomed one."""

from __future__ import annotations

import asyncio
import os
import time

from qaio import App, current_job, report_progress

app = App(os.environ.get("QAIO_DEMO_URL", "sqlite:///qaio-demo.db"), result_ttl=600)


@app.task(retries=2, timeout=10)
def resize(path: str, width: int) -> str:
    """A sync task: runs in the worker's thread pool."""
    time.sleep(0.002)
    return f"{path}@{width}px"


@app.task(queue="emails", priority=5)
async def send_email(to: str, subject: str) -> None:
    """An async task on its own queue, at a higher priority."""
    await asyncio.sleep(0.001)


@app.task(retries=3, backoff=0.2)
def flaky_upload(name: str) -> str:
    """Fails twice, then succeeds: shows retries with backoff."""
    attempt = current_job().attempt
    if attempt < 3:
        raise ConnectionError(f"upload of {name} timed out (attempt {attempt})")
    return f"uploaded {name} on attempt {attempt}"


@app.task(retries=2, backoff=0.1)
def doomed(reason: str) -> None:
    """Always fails: ends in the dead-letter store once its retries are spent."""
    raise ValueError(reason)


@app.task
async def build_report(steps: int) -> str:
    """Reports its progress as it goes."""
    for step in range(1, steps + 1):
        await asyncio.sleep(0.15)
        report_progress(step / steps, f"step {step} of {steps}")
    return f"report with {steps} sections"
